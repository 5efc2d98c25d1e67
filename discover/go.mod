module github.com/hostguard/hostguard/discover

go 1.26.0

require (
	cloud.google.com/go/compute/metadata v0.10.0
	github.com/hostguard/hostguard v0.1.0
)

require (
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
