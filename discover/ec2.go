package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// EC2 instance metadata (IMDS), spoken directly: IMDSv2 (a token from PUT
// /latest/api/token, sent with every GET) with a fallback to IMDSv1 (GET
// without a token) unless it is turned off. The AWS SDK's client caps every
// request at 0.5 s and two tries, so a slow service fails whatever the
// deadline; here the deadline is the only budget, and IMDSv1 is tried
// beside an unanswered token request instead of after giving up on it.

const (
	imdsSource    = "ec2 metadata"
	imdsDefaultV4 = "http://169.254.169.254"
	imdsDefaultV6 = "http://[fd00:ec2::254]"
	hopLimitFix   = "aws ec2 modify-instance-metadata-options --instance-id <id> --http-put-response-hop-limit 2 (launch template: HttpPutResponseHopLimit: 2)"
	imdsEnableFix = "aws ec2 modify-instance-metadata-options --instance-id <id> --http-endpoint enabled"
	tokenPath     = "/latest/api/token"
	tokenTTL      = "21600" // the longest IMDS grants: one token serves the whole discovery
	// tokenPatience is how long a token request may go unanswered before
	// IMDSv1 is tried beside it (when the fallback is on): the time after
	// which the AWS SDKs give up on a token. In a container on an instance
	// with a hop limit of 1 the token answer never arrives.
	tokenPatience = 500 * time.Millisecond
)

// imdsConfig is the EC2 metadata client configuration resolved from the
// options and the environment, the way the AWS SDKs resolve it.
type imdsConfig struct {
	endpoint   string
	disabled   bool
	noFallback bool
}

func (d *discoverer) imdsConfig() imdsConfig {
	def := imdsDefaultV4
	if strings.EqualFold(d.getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"), "ipv6") {
		def = imdsDefaultV6
	}
	return imdsConfig{
		endpoint:   strings.TrimRight(cmp.Or(d.o.IMDSEndpoint, d.getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"), def), "/"),
		disabled:   strings.EqualFold(d.getenv("AWS_EC2_METADATA_DISABLED"), "true"),
		noFallback: d.o.DisableIMDSv1 || strings.EqualFold(d.getenv("AWS_EC2_METADATA_V1_DISABLED"), "true"),
	}
}

// ec2 adds the instance's private addresses from the EC2 metadata service:
// the primary local-ipv4 and every interface's local-ipv4s and ipv6s.
func (d *discoverer) ec2(ctx context.Context, res *Result) error {
	c := d.imdsConfig()
	if c.disabled {
		return &SourceError{Source: imdsSource, Err: errors.New("disabled by AWS_EC2_METADATA_DISABLED=true"),
			Hint: "unset AWS_EC2_METADATA_DISABLED, or give the addresses in Options.Static"}
	}
	version := "IMDSv2, falling back to IMDSv1"
	if c.noFallback {
		version = "IMDSv2 only"
	}
	res.note("asking the EC2 metadata service at %s (%s)", c.endpoint, version)
	m := &imdsSession{d: d, c: c, res: res, held: map[string]imdsAnswer{}}
	if err := m.open(ctx); err != nil {
		return err
	}
	addList := func(path, body string) error {
		addrs, err := parseAddrs(body)
		if err != nil {
			return &SourceError{Source: imdsSource, URL: m.url(path), Err: fmt.Errorf("garbage answer %q: %w", truncate(body), err),
				Hint: "the endpoint is not an EC2 metadata service, or a proxy in between rewrote the answer"}
		}
		for _, a := range addrs {
			res.add(a, imdsSource+" "+path)
		}
		return nil
	}

	primary, found, err := m.get(ctx, "local-ipv4")
	if err != nil {
		return err
	}
	if found { // an IPv6-only instance has none
		if err := addList("local-ipv4", primary); err != nil {
			return err
		}
	}
	macs, found, err := m.get(ctx, "network/interfaces/macs/")
	if err == nil && !found {
		err = &SourceError{Source: imdsSource, URL: m.url("network/interfaces/macs/"), Err: &statusError{Code: 404},
			Hint: "no such metadata path; the endpoint may not be an EC2 metadata service"}
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Fields(macs) {
		mac := strings.TrimSuffix(line, "/")
		if !isMAC(mac) {
			return &SourceError{Source: imdsSource, URL: m.url("network/interfaces/macs/"),
				Err: fmt.Errorf("garbage answer: %q is not a MAC address", truncate(line))}
		}
		for _, kind := range []string{"local-ipv4s", "ipv6s"} {
			path := "network/interfaces/macs/" + mac + "/" + kind
			body, found, err := m.get(ctx, path)
			if err != nil {
				return err
			}
			if !found {
				continue // no addresses of that family on this interface
			}
			if err := addList(path, body); err != nil {
				return err
			}
		}
	}
	if len(res.Addresses) == 0 {
		return &SourceError{Source: imdsSource, URL: c.endpoint, Err: errors.New("the metadata service listed no address")}
	}
	return nil
}

// imdsSession is one discovery's conversation with the metadata service.
type imdsSession struct {
	d        *discoverer
	c        imdsConfig
	res      *Result
	token    string                // "" for IMDSv1
	answered int                   // answers received, whatever their status
	held     map[string]imdsAnswer // answers already had (the IMDSv1 probe's)
}

// imdsAnswer is the outcome of one request.
type imdsAnswer struct {
	r   *fetchResult
	err error
}

func (m *imdsSession) url(path string) string { return m.c.endpoint + "/latest/meta-data/" + path }

// open gets a token, or settles for IMDSv1. With the fallback on, a token
// request unanswered after tokenPatience gets an IMDSv1 request beside it,
// and whichever works first wins; neither is cut short before the
// deadline.
func (m *imdsSession) open(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx) // ends the request that lost
	defer cancel()
	tokc := make(chan imdsAnswer, 1)
	go func() {
		r, err := m.d.fetch(ctx, fetchRequest{source: imdsSource, method: http.MethodPut, url: m.c.endpoint + tokenPath,
			header: http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {tokenTTL}}})
		tokc <- imdsAnswer{r, err}
	}()
	var patience <-chan time.Time
	if !m.c.noFallback {
		t := time.NewTimer(tokenPatience)
		defer t.Stop()
		patience = t.C
	}
	var probec chan imdsAnswer // nil when not sent, or answered
	probed := false
	probe := func() {
		if probed || m.c.noFallback {
			return
		}
		probed = true
		probec = make(chan imdsAnswer, 1)
		go func() {
			r, err := m.d.fetch(ctx, fetchRequest{source: imdsSource, method: http.MethodGet, url: m.url("local-ipv4")})
			probec <- imdsAnswer{r, err}
		}()
	}
	var tok, v1 *imdsAnswer
	for {
		select {
		case a := <-tokc:
			tokc, tok = nil, &a
			if a.err == nil {
				m.answered++
				if t, ok := tokenOf(a.r); ok {
					m.token = t
					m.res.note("IMDSv2 token issued")
					return nil
				}
			}
			if a.err == nil && a.r.status == http.StatusBadRequest {
				return m.openFailure(tok, v1)
			}
			probe()
		case <-patience:
			patience = nil
			m.res.note("no answer to the IMDSv2 token request after %v; trying IMDSv1 beside it", tokenPatience)
			probe()
		case a := <-probec:
			probec, v1 = nil, &a
			if a.err == nil {
				m.answered++
				if s := a.r.status; s == http.StatusOK || s == http.StatusNotFound {
					// IMDSv1 works (a 404 is an IPv6-only instance).
					m.held["local-ipv4"] = a
					m.res.note("using IMDSv1: the token request failed or got no answer, and IMDSv1 answers")
					return nil
				}
			}
		}
		if tokc == nil && probec == nil && (probed || m.c.noFallback) {
			return m.openFailure(tok, v1)
		}
	}
}

// tokenOf returns the token of a successful token answer. IMDS sends the
// token's lifetime back in a header; an answer without it did not come from
// IMDS (the AWS SDKs refuse it too).
func tokenOf(r *fetchResult) (string, bool) {
	t := strings.TrimSpace(string(r.body))
	return t, r.status == http.StatusOK && t != "" && r.header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") != ""
}

// openFailure explains why neither a token nor IMDSv1 could be had. tok is
// the token request's outcome, v1 the IMDSv1 request's (nil when it was not
// tried).
func (m *imdsSession) openFailure(tok, v1 *imdsAnswer) error {
	e := &SourceError{Source: imdsSource, URL: m.c.endpoint + tokenPath}
	parts := []string{"IMDSv2 token request: " + describe(tok)}
	if v1 != nil {
		parts = append(parts, "IMDSv1 request: "+describe(v1))
		e.URL += " and " + m.url("local-ipv4")
	}
	e.Err = errors.New(strings.Join(parts, "; "))
	unanswered := tok.err != nil && pastDeadline(tok.err)
	status := func(a *imdsAnswer) int {
		if a == nil || a.r == nil {
			return 0
		}
		return a.r.status
	}
	switch {
	case status(tok) == http.StatusForbidden || status(v1) == http.StatusForbidden:
		e.Hint = "the instance metadata service is disabled on this instance: " + imdsEnableFix
	case unanswered && m.c.noFallback:
		e.Hint = "the token answer never arrived and IMDSv1 fallback is off (Options.DisableIMDSv1 or AWS_EC2_METADATA_V1_DISABLED): in a container on EC2 the token answer is dropped when the hop limit is 1: " + hopLimitFix
	case unanswered && status(v1) == http.StatusUnauthorized:
		e.Hint = "the token answer never arrived and the instance requires IMDSv2 (HttpTokens=required): in a container on EC2 the token answer is dropped when the hop limit is 1: " + hopLimitFix
	case unanswered && v1 != nil && v1.err != nil && pastDeadline(v1.err):
		e.Hint = fmt.Sprintf("nothing answered within the %s deadline: in a container on EC2 the token answer is dropped when the hop limit is 1: %s; if this is not EC2, name the platform in Options.Platform", m.d.timeout, hopLimitFix)
	case errors.Is(tok.err, syscall.ECONNREFUSED):
		e.Hint = "nothing listens there; check Options.IMDSEndpoint or AWS_EC2_METADATA_SERVICE_ENDPOINT, or whether this is EC2 at all"
	case status(tok) == http.StatusBadRequest:
		e.Hint = "the service refused the token request as malformed: a proxy in between may drop its X-Aws-Ec2-Metadata-Token-Ttl-Seconds header"
	case status(tok) == http.StatusOK:
		e.Hint = "a 200 without a token lifetime header did not come from an EC2 metadata service (a proxy or captive portal?)"
	case status(tok) >= 500 || status(v1) >= 500:
		e.Hint = "the metadata service failed on every try; it is usually transient"
	}
	return e
}

// describe says in words what a request got.
func describe(a *imdsAnswer) string {
	switch {
	case a == nil:
		return "not sent"
	case a.err != nil:
		return a.err.Error()
	case a.r.status == http.StatusUnauthorized:
		return "HTTP status 401 (the instance requires IMDSv2)"
	case a.r.status == http.StatusOK:
		return "HTTP status 200 without a token lifetime header"
	}
	s := fmt.Sprintf("HTTP status %d", a.r.status)
	if a.r.tries > 1 {
		s += fmt.Sprintf(" on every one of %d tries", a.r.tries)
	}
	return s
}

// get reads a metadata path; found is false for a 404. A 401 with a token
// (it expired) gets a new token and one more try.
func (m *imdsSession) get(ctx context.Context, path string) (body string, found bool, err error) {
	if a, ok := m.held[path]; ok {
		delete(m.held, path)
		return string(a.r.body), a.r.status == http.StatusOK, nil
	}
	for renewed := false; ; renewed = true {
		h := http.Header{}
		if m.token != "" {
			h.Set("X-Aws-Ec2-Metadata-Token", m.token)
		}
		r, err := m.d.fetch(ctx, fetchRequest{source: imdsSource, method: http.MethodGet, url: m.url(path), header: h})
		if err != nil {
			return "", false, m.getFailure(path, r, err)
		}
		m.answered++
		switch r.status {
		case http.StatusOK:
			return string(r.body), true, nil
		case http.StatusNotFound:
			return "", false, nil
		case http.StatusUnauthorized:
			if m.token != "" && !renewed {
				tr, err := m.d.fetch(ctx, fetchRequest{source: imdsSource, method: http.MethodPut, url: m.c.endpoint + tokenPath,
					header: http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {tokenTTL}}})
				if t, ok := tokenOf(tr); err == nil && ok {
					m.token = t
					m.res.note("the IMDSv2 token was refused (expired?); got a new one")
					continue
				}
			}
		}
		return "", false, m.getFailure(path, r, &statusError{Code: r.status})
	}
}

// getFailure explains a failed GET after the session was open.
func (m *imdsSession) getFailure(path string, r *fetchResult, err error) error {
	e := &SourceError{Source: imdsSource, URL: m.url(path), Err: err}
	switch code := statusOf(err); {
	case code == http.StatusUnauthorized && m.token == "":
		e.Hint = "the instance requires IMDSv2 (HttpTokens=required) but answered IMDSv1 at first"
	case code == http.StatusUnauthorized:
		e.Hint = "the IMDSv2 token was refused even when new"
	case code == http.StatusForbidden:
		e.Hint = "the instance metadata service is disabled on this instance: " + imdsEnableFix
	case code == http.StatusTooManyRequests:
		e.Hint = fmt.Sprintf("throttled: IMDS answered 429 on every one of %d tries; something else on this instance is calling it heavily", r.tries)
	case code >= 500:
		e.Hint = fmt.Sprintf("the metadata service failed (status %d) on every one of %d tries; it is usually transient", code, r.tries)
	case pastDeadline(err):
		e.Hint = fmt.Sprintf("the metadata service answered %d requests before, so it is there but slow: the %s deadline ran out; raise Options.Timeout", m.answered, m.d.timeout)
	}
	return e
}

func isMAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return false
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
