package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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

// statusError is an unexpected HTTP status from a metadata service.
type statusError struct {
	Code int
}

// Error returns "HTTP status N".
func (e *statusError) Error() string { return fmt.Sprintf("HTTP status %d", e.Code) }

// HTTPStatusCode returns the status, as the AWS SDK's errors do.
func (e *statusError) HTTPStatusCode() int { return e.Code }

// statusOf returns the HTTP status carried by err, or 0.
func statusOf(err error) int {
	var s interface{ HTTPStatusCode() int }
	if errors.As(err, &s) {
		return s.HTTPStatusCode()
	}
	return 0
}

// pastDeadline reports whether err is the discovery's deadline (context
// DeadlineExceeded, however wrapped) or a network time-out.
func pastDeadline(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// genericHint explains the failure classes every metadata source shares.
// res, when not nil, says how the request went (tries, throttling).
func genericHint(err error, what string, res *fetchResult) string {
	tries := 1
	if res != nil {
		tries = res.tries
	}
	switch code := statusOf(err); {
	case code == http.StatusTooManyRequests:
		return fmt.Sprintf("throttled: the %s answered 429 on every one of %d tries before the deadline; something else on this machine is calling it heavily, or raise Options.Timeout to wait longer", what, tries)
	case code == 401 || code == 403:
		return fmt.Sprintf("the %s refused the request (status %d)", what, code)
	case code == 404:
		return fmt.Sprintf("the %s has no such path: is the endpoint really the %s?", what, what)
	case code == http.StatusGone || code >= 500:
		return fmt.Sprintf("the %s failed (status %d) on every one of %d tries before the deadline; it is usually transient (maintenance), try again", what, code, tries)
	case code != 0:
		return fmt.Sprintf("unexpected status %d from the %s", code, what)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens at the %s endpoint; check the endpoint setting", what)
	case pastDeadline(err) && res != nil && res.throttled > 0:
		return fmt.Sprintf("throttled: the %s answered 429 %d times and the deadline ran out; something else on this machine is calling it heavily, or raise Options.Timeout", what, res.throttled)
	case pastDeadline(err):
		return fmt.Sprintf("the %s did not answer in time; raise Options.Timeout, or name the platform that is really here in Options.Platform", what)
	}
	return ""
}
