package discover

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strings"

	"cloud.google.com/go/compute/metadata"
)

const gceSource = "gce metadata"

// retarget sends every request to one host. The GCE metadata package takes
// its host only from the process environment; this makes the host an option
// without touching the environment.
type retarget struct {
	host string
	base http.RoundTripper
}

func (t retarget) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Host, r.Host = t.host, t.host
	return t.base.RoundTrip(r)
}

// gce adds every network interface's internal address from the GCE metadata
// server. It never calls metadata.OnGCE, which probes 169.254.169.254
// wherever it runs.
func (d *discoverer) gce(ctx context.Context, res *Result) error {
	host := cmp.Or(d.o.GCEMetadataHost, d.getenv("GCE_METADATA_HOST"), "169.254.169.254")
	hc := d.httpClient(0)
	hc.Transport = retarget{host: host, base: hc.Transport}
	client := metadata.NewWithOptions(&metadata.Options{Client: hc})
	base := "http://" + host + "/computeMetadata/v1/"
	res.note("asking the GCE metadata server at %s", host)

	fail := func(path string, err error) error {
		var me *metadata.Error
		if errors.As(err, &me) {
			err = &StatusError{Code: me.Code}
		}
		return &SourceError{Source: gceSource, URL: base + path, Err: err, Hint: genericHint(err, gceSource)}
	}
	const ifaces = "instance/network-interfaces/"
	list, err := client.GetWithContext(ctx, ifaces)
	if err != nil {
		return fail(ifaces, err)
	}
	for _, line := range strings.Fields(list) {
		idx := strings.TrimSuffix(line, "/")
		if idx == "" || strings.Trim(idx, "0123456789") != "" {
			return &SourceError{Source: gceSource, URL: base + ifaces, Err: errors.New("garbage answer: " + quote(truncate(line)) + " is not an interface index")}
		}
		for _, kind := range []string{"ip", "ipv6s"} {
			path := ifaces + idx + "/" + kind
			v, err := client.GetWithContext(ctx, path)
			var nd metadata.NotDefinedError
			if errors.As(err, &nd) {
				continue
			}
			if err != nil {
				return fail(path, err)
			}
			addrs, err := parseAddrs(v)
			if err != nil {
				return &SourceError{Source: gceSource, URL: base + path, Err: errors.New("garbage answer: " + err.Error())}
			}
			for _, a := range addrs {
				res.add(a, gceSource+" "+path)
			}
		}
	}
	if len(res.Addresses) == 0 {
		return &SourceError{Source: gceSource, URL: base + ifaces, Err: errors.New("the metadata server listed no address")}
	}
	return nil
}
