// Command goapp is a small web app that uses the hostguard middleware with
// "@self", so the load balancer's health checks on the instance's private
// address pass while every other unknown Host is rejected.
//
//	goapp --listen :8000 --allow lhy.kr,@self
//
// Environment: GOAPP_LISTEN, GOAPP_ALLOW, and the discovery variables of
// hostguard, read by discover.OptionsFromEnv (HOSTGUARD_PLATFORM,
// HOSTGUARD_TIMEOUT, HOSTGUARD_SELF, AWS_EC2_METADATA_SERVICE_ENDPOINT, ...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/discover"
)

func main() {
	listen := flag.String("listen", envOr("GOAPP_LISTEN", ":8000"), "address to serve on (env GOAPP_LISTEN)")
	allow := flag.String("allow", envOr("GOAPP_ALLOW", "lhy.kr,@self"), "allow list, comma separated (env GOAPP_ALLOW)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*listen, strings.Split(*allow, ","), log); err != nil {
		log.Error("goapp: " + err.Error())
		os.Exit(1)
	}
}

func run(listen string, allow []string, log *slog.Logger) error {
	g, err := hostguard.New(hostguard.Options{AllowedHosts: allow, Logger: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if g.HasSelf() {
		// The same variables as the hostguard command: HOSTGUARD_PLATFORM,
		// HOSTGUARD_TIMEOUT, HOSTGUARD_SELF, HOSTGUARD_SYSFS.
		o, err := discover.OptionsFromEnv(nil)
		if err != nil {
			return err
		}
		res, err := discover.Fill(ctx, g, o)
		if err != nil {
			return fmt.Errorf("discovering @self: %w", err)
		}
		for _, a := range res.Addresses {
			log.Info("goapp: @self", "address", a.Addr.String(), "sources", strings.Join(a.Sources, ", "))
		}
	}

	mux := http.NewServeMux()
	health := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("GET /health", health)
	mux.HandleFunc("GET /health/", health) // the path Django's example and the e2e target group use
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello from goapp, Host %s\n", r.Host) })
	srv := &http.Server{Addr: listen, Handler: g.Handler(mux), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("goapp: serving", "listen", listen, "allow", strings.Join(g.Entries(), ","), "self", fmt.Sprint(g.Self()))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Graceful shutdown: stop accepting, finish requests in flight.
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("goapp: stopped")
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
