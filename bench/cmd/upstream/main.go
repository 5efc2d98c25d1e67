// Command upstream is the application the proxy benchmark puts behind each
// proxy: a small fixed answer, as a health check or a light page gets.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18000", "address")
	flag.Parse()
	body := []byte("hello from the upstream, a small fixed body\n")
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})))
}
