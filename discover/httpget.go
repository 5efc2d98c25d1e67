package discover

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// getJSON fetches url with the given headers and decodes a JSON answer into
// v. Failures come back as a *SourceError naming source and url.
func (d *discoverer) getJSON(ctx context.Context, source, url string, header http.Header, v any) error {
	fail := func(err error, hint string) error {
		return &SourceError{Source: source, URL: url, Err: err, Hint: hint}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail(err, "check the endpoint setting")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := d.httpClient(0).Do(req)
	if err != nil {
		return fail(err, genericHint(err, source))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail(err, genericHint(err, source))
	}
	if resp.StatusCode != http.StatusOK {
		err := &StatusError{Code: resp.StatusCode}
		return fail(err, genericHint(err, source))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fail(fmt.Errorf("garbage answer (%v): %q", err, truncate(string(body))), "the endpoint is not a "+source+" service")
	}
	return nil
}
