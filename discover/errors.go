package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"syscall"
)

// SourceError is the failure of one discovery source.
type SourceError struct {
	Source string // "ec2 metadata", "ecs task metadata", ...
	URL    string // what was asked, if anything
	Err    error
	Hint   string // the likely fix
}

// Error names the source, the URL, the failure and the likely fix.
func (e *SourceError) Error() string {
	s := "discover: " + e.Source
	if e.URL != "" {
		s += " " + e.URL
	}
	s += ": " + e.Err.Error()
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// Unwrap returns the underlying failure.
func (e *SourceError) Unwrap() error { return e.Err }

// StatusError is an unexpected HTTP status from a metadata service.
type StatusError struct {
	Code int
}

// Error returns "HTTP status N".
func (e *StatusError) Error() string { return fmt.Sprintf("HTTP status %d", e.Code) }

// HTTPStatusCode returns the status, as the AWS SDK's errors do.
func (e *StatusError) HTTPStatusCode() int { return e.Code }

// sdkStatus finds the status in the text of an AWS SDK response error.
var sdkStatus = regexp.MustCompile(`StatusCode: ([1-5][0-9][0-9])\b`)

// statusOf returns the HTTP status carried by err, or 0.
func statusOf(err error) int {
	if err == nil {
		return 0
	}
	var s interface{ HTTPStatusCode() int }
	if errors.As(err, &s) {
		return s.HTTPStatusCode()
	}
	// The IMDS client wraps a 401 in an error type without Unwrap
	// (retryableError in feature/ec2/imds), so only its text holds the
	// status.
	if m := sdkStatus.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// isTimeout reports whether err is a deadline or a network time-out.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// genericHint explains the failure classes every metadata source shares.
func genericHint(err error, what string) string {
	switch code := statusOf(err); {
	case code == 401 || code == 403:
		return fmt.Sprintf("the %s refused the request (status %d)", what, code)
	case code == 404:
		return fmt.Sprintf("the %s has no such path: is the endpoint really the %s?", what, what)
	case code >= 500:
		return fmt.Sprintf("the %s failed (status %d); it is usually transient, try again", what, code)
	case code != 0:
		return fmt.Sprintf("unexpected status %d from the %s", code, what)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens at the %s endpoint; check the endpoint setting", what)
	case isTimeout(err):
		return fmt.Sprintf("the %s did not answer in time; raise --timeout, or name the platform that is really here with --platform", what)
	}
	return ""
}
