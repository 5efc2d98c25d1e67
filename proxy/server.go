package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostguard/hostguard/proxy/internal/ratelog"
)

// Server defaults.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultBodyTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 32 << 10
	DefaultGrace             = 30 * time.Second
)

// ServerOptions configures [Proxy.Serve] and [ServeHandler]. Zero values
// take the defaults above.
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle that long.
	IdleTimeout time.Duration
	// WriteTimeout bounds the writes to a client, like nginx's
	// send_timeout: a client that stops reading is dropped, while a long
	// stream or a WebSocket that keeps moving is not cut. Every write has
	// between half of WriteTimeout and all of it to complete (the deadline
	// is moved only when half of it has passed, to spare a system call per
	// write).
	WriteTimeout time.Duration
	// BodyTimeout bounds the wait between two reads of a request body,
	// like nginx's client_body_timeout: an upload that keeps moving may
	// take as long as it needs, a client that stops sending is dropped
	// (408).
	BodyTimeout time.Duration
	// MaxHeaderBytes limits the request line and headers; larger requests
	// get 431. Serve reads them into a buffer of this size per active
	// connection, and retains several times more per idle connection for
	// headers far over 32 KiB, so the default stays there (nginx allows
	// 4 × 8 KiB).
	MaxHeaderBytes int
	// Grace is how long a shutdown waits for requests in flight.
	Grace time.Duration
	// TLSConfig, when set, serves HTTPS with it (see [Certificate]): the
	// handshake must finish within ReadHeaderTimeout, and a client that
	// speaks plain HTTP to it gets a 400 that says so. Requests over TLS
	// reach the upstream with X-Forwarded-Proto: https.
	TLSConfig *tls.Config
	// Logger receives the server's own errors. Nil: slog.Default().
	Logger *slog.Logger
}

func (o *ServerOptions) defaults() {
	o.ReadHeaderTimeout = positiveOr(o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	o.IdleTimeout = positiveOr(o.IdleTimeout, DefaultIdleTimeout)
	o.WriteTimeout = positiveOr(o.WriteTimeout, DefaultWriteTimeout)
	o.BodyTimeout = positiveOr(o.BodyTimeout, DefaultBodyTimeout)
	o.MaxHeaderBytes = positiveOr(o.MaxHeaderBytes, DefaultMaxHeaderBytes)
	o.Grace = positiveOr(o.Grace, DefaultGrace)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// ErrGraceExceeded is returned by Serve when requests were still in flight
// at the end of the grace period.
var ErrGraceExceeded = errors.New("grace period ended with requests in flight")

// Serve serves the proxy on l until ctx is done. Then it stops accepting
// connections, closes the idle ones, lets the requests in flight finish for
// up to o.Grace and returns nil, or ErrGraceExceeded if it had to cut some.
// WebSocket tunnels get the grace period too and are closed when it ends
// (that is not an error).
func (p *Proxy) Serve(ctx context.Context, l net.Listener, o ServerOptions) error {
	o.defaults()
	s := &server{p: p, o: o, conns: map[*clientConn]struct{}{},
		// Malformed requests are logged without their bytes, and not
		// more often than a scanner deserves.
		log: ratelog.New(o.Logger, 6*time.Second, 10)}
	errc := make(chan error, 1)
	go func() { errc <- s.accept(l) }()
	if p.up != nil {
		go s.reapIdle(ctx)
	}
	select {
	case err := <-errc:
		s.closing.Store(true)
		s.cut()
		return fmt.Errorf("serving on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	s.closing.Store(true)
	l.Close()
	<-errc
	return s.shutdown()
}

// server is one Serve call: its connections and their lifecycle.
type server struct {
	p       *Proxy
	o       ServerOptions
	log     *ratelog.Logger
	closing atomic.Bool

	mu    sync.Mutex
	conns map[*clientConn]struct{}
	wg    sync.WaitGroup
}

// accept accepts connections until the listener is closed. Like net/http,
// it waits a little after a temporary error (too many open files) instead
// of failing.
func (s *server) accept(l net.Listener) error {
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Log(slog.LevelError, "hostguard proxy: accept failed; retrying", slog.String("error", err.Error()),
					slog.Duration("retry_in", delay))
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(nc)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// shutdown closes idle connections, waits for the others up to the grace
// period, then closes what is left.
func (s *server) shutdown() error {
	deadline := time.Now().Add(s.o.Grace)
	for {
		active, tunnels := s.closeIdle()
		if active+tunnels == 0 || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	active, _ := s.closeIdle()
	s.p.endTunnels(s.o.Logger)
	s.cut()
	if s.p.up != nil {
		s.p.up.closeIdle()
	}
	if active > 0 {
		return fmt.Errorf("%w (%s): %d cut", ErrGraceExceeded, s.o.Grace, active)
	}
	return nil
}

// closeIdle closes the connections waiting for a request and counts the
// others.
func (s *server) closeIdle() (active, tunnels int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		switch {
		case c.state.CompareAndSwap(stateIdle, stateClosed):
			_ = c.raw.SetReadDeadline(time.Now()) // wakes its read
		case c.state.Load() == stateActive:
			active++
		case c.state.Load() == stateTunnel:
			tunnels++
		}
	}
	return active, tunnels
}

// cut closes every connection and waits for their goroutines.
func (s *server) cut() {
	s.mu.Lock()
	for c := range s.conns {
		c.raw.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// reapIdle closes pooled upstream connections that stayed idle too long,
// until ctx is done.
func (s *server) reapIdle(ctx context.Context) {
	t := time.NewTicker(idleUpstreamTimeout / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.p.up.reap(time.Now().Add(-idleUpstreamTimeout))
		}
	}
}

// clientError counts and logs a request refused for its form.
func (s *server) clientError(e *clientError, remote string) {
	if s.p.metrics != nil {
		s.p.metrics.clientErrors.WithLabelValues(e.kind).Inc()
	}
	s.log.Log(slog.LevelWarn, "hostguard proxy: bad request", slog.Int("status", e.status),
		slog.String("kind", e.kind), slog.String("error", e.text), slog.String("remote", remote))
}
