// Command upstream is the application the proxy benchmarks put behind each
// proxy: a small fixed answer, as a health check or a light page gets; and
// /slow, which answers after a minute unless its client leaves first.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18000", "address")
	flag.Parse()
	body := []byte("hello from the upstream, a small fixed body\n")
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Minute):
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})))
}
