// Command stockproxy is httputil.NewSingleHostReverseProxy with default
// settings: the baseline a hand-rolled Go sidecar starts from.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18003", "address")
	upstream := flag.String("upstream", "http://127.0.0.1:18000", "upstream URL")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(*addr, httputil.NewSingleHostReverseProxy(u)))
}
