package discover

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// getJSON fetches r.url with r's headers, retrying what asks to be retried
// within the deadline, and decodes a JSON answer into v. Failures come back
// as a *SourceError naming source and URL. A throttled or failing service
// that answered in the end is noted in res.
func (d *discoverer) getJSON(ctx context.Context, r fetchRequest, v any, res *Result) error {
	r.method = http.MethodGet
	fail := func(err error, hint string) error {
		return &SourceError{Source: r.source, URL: r.url, Err: err, Hint: hint}
	}
	got, err := d.fetch(ctx, r)
	if err != nil {
		return fail(err, genericHint(err, r.source, got))
	}
	if got.status != http.StatusOK {
		err := &statusError{Code: got.status}
		return fail(err, genericHint(err, r.source, got))
	}
	switch {
	case got.throttled > 0:
		res.note("%s throttled the request (HTTP 429) %d times; it answered on try %d", r.source, got.throttled, got.tries)
	case got.tries > 1:
		res.note("%s answered on try %d", r.source, got.tries)
	}
	if err := json.Unmarshal(got.body, v); err != nil {
		return fail(fmt.Errorf("garbage answer (%v): %q", err, truncate(string(got.body))), "the endpoint is not a "+r.source+" service")
	}
	return nil
}
