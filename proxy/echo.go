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
	var b strings.Builder
	fmt.Fprintln(&b, "hostguard built-in backend: this is what an upstream would receive")
	fmt.Fprintf(&b, "method: %s\n", r.Method)
	fmt.Fprintf(&b, "host: %q\n", r.Host)
	fmt.Fprintf(&b, "path: %q\n", r.URL.RequestURI())
	var names []string
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Forwarded-") || k == "Forwarded" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "%s: %q\n", strings.ToLower(k), strings.Join(r.Header[k], ", "))
	}
	_, _ = w.Write([]byte(b.String()))
}
