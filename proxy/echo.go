package proxy

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Echo is the built-in backend used when no upstream is given: it answers
// with what it received, so the proxy can be tried on its own.
func Echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fwd := map[string][]string{}
	for k, v := range r.Header {
		if isForwardedHeader(k) {
			fwd[k] = v
		}
	}
	_, _ = w.Write([]byte(echoText(r.Method, r.Host, r.URL.RequestURI(), fwd)))
}

func isForwardedHeader(k string) bool {
	k = strings.ToLower(k)
	return strings.HasPrefix(k, "x-forwarded-") || k == "forwarded"
}

// echoText is the built-in backend's answer.
func echoText(method, host, uri string, forwarded map[string][]string) string {
	var b strings.Builder
	fmt.Fprintln(&b, "hostguard built-in backend: this is what an upstream would receive")
	fmt.Fprintf(&b, "method: %s\n", method)
	fmt.Fprintf(&b, "host: %q\n", host)
	fmt.Fprintf(&b, "path: %q\n", uri)
	names := make([]string, 0, len(forwarded))
	for k := range forwarded {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "%s: %q\n", strings.ToLower(k), strings.Join(forwarded[k], ", "))
	}
	return b.String()
}
