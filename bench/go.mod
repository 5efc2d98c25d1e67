module github.com/hostguard/hostguard/bench

go 1.26.0

require github.com/hostguard/hostguard v0.1.0

require (
	github.com/unrolled/secure v1.18.0
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace github.com/hostguard/hostguard => ../
