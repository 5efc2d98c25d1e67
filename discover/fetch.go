package discover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// Requests to metadata services. Every request is bounded only by the
// discovery's deadline (Options.Timeout): no per-request cap makes an answer
// that arrives within it fail. Answers that say "try again" (429, 5xx, and
// the 410 of Azure's maintenance) and transient network failures are retried
// with a growing pause, inside the same deadline.

// maxMetadataLen bounds a metadata answer.
const maxMetadataLen = 1 << 20

// fetchRequest is one request to a metadata service.
type fetchRequest struct {
	source string // for errors: "ec2 metadata", "azure imds", ...
	method string
	url    string
	header http.Header
	// retry410 retries 410 Gone, which Azure IMDS answers during
	// maintenance.
	retry410 bool
}

// fetchResult is what a request got: the last status and body, and how
// often it had to try.
type fetchResult struct {
	status int
	header http.Header
	body   []byte
	tries  int
	// throttled counts the 429 answers among the tries.
	throttled int
}

// retryable reports whether a status asks to try again later.
func (r *fetchRequest) retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 || r.retry410 && status == http.StatusGone
}

// fetch sends r until it gets an answer that is not retryable, or the
// context ends. A final retryable status is returned as the result, not an
// error; err is a network failure or the deadline, wrapped in a
// *fetchError that says how many tries there were.
func (d *discoverer) fetch(ctx context.Context, r fetchRequest) (*fetchResult, error) {
	hc := d.client()
	res := &fetchResult{}
	pause := 100 * time.Millisecond
	for {
		res.tries++
		req, err := http.NewRequestWithContext(ctx, r.method, r.url, nil)
		if err != nil {
			return res, err
		}
		for k, v := range r.header {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err == nil {
			res.status, res.header = resp.StatusCode, resp.Header
			res.body, err = io.ReadAll(io.LimitReader(resp.Body, maxMetadataLen))
			resp.Body.Close()
		}
		switch {
		case err != nil && !transient(err):
			return res, &fetchError{err: err, tries: res.tries, lastStatus: res.status, throttled: res.throttled}
		case err == nil && !r.retryable(res.status):
			return res, nil
		case res.status == http.StatusTooManyRequests:
			res.throttled++
		}
		wait := pause
		if after := retryAfter(res.header); err == nil && after > wait {
			wait = after
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// No time for another try: report the last answer.
			if err != nil {
				return res, &fetchError{err: err, tries: res.tries, lastStatus: res.status, throttled: res.throttled}
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, &fetchError{err: ctx.Err(), tries: res.tries, lastStatus: res.status, throttled: res.throttled}
		case <-time.After(wait):
		}
		pause = min(2*pause, time.Second)
	}
}

// fetchError is a request that got no usable answer.
type fetchError struct {
	err        error
	tries      int
	lastStatus int // the last status seen before the failure, or 0
	throttled  int
}

func (e *fetchError) Error() string {
	s := e.err.Error()
	if pastDeadline(e.err) {
		s = "no answer before the deadline"
	}
	if e.tries > 1 {
		s += fmt.Sprintf(" (%d tries", e.tries)
		if e.lastStatus != 0 {
			s += fmt.Sprintf(", the last answer before it HTTP status %d", e.lastStatus)
		}
		s += ")"
	}
	return s
}

func (e *fetchError) Unwrap() error { return e.err }

// transient reports whether a network failure is worth another try: the
// connection was reset or closed under the request. A refused connection
// is not (nothing listens there), nor the deadline.
func transient(err error) bool {
	if pastDeadline(err) || errors.Is(err, context.Canceled) {
		return false
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// retryAfter reads a Retry-After of seconds.
func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// client returns the discovery's HTTP client: it never uses a proxy
// (metadata services are link-local), dials through Options.DialContext
// when set, and sets no time limit of its own: the context's deadline is
// the budget. One discovery keeps its connections alive between requests.
func (d *discoverer) client() *http.Client {
	d.hcOnce.Do(func() { d.hc = d.newClient() })
	return d.hc
}

func (d *discoverer) newClient() *http.Client {
	dial := (&net.Dialer{}).DialContext
	if d.o.DialContext != nil {
		dial = d.o.DialContext
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dial,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     5 * time.Second,
		},
		// Metadata services do not redirect; a redirect is a sign of
		// something else answering.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
