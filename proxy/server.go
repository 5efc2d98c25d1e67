package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server defaults.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultGrace             = 30 * time.Second
)

// ServerOptions configures [Serve]. Zero values take the defaults above.
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
	// MaxHeaderBytes limits the request line and headers; larger requests
	// get 431.
	MaxHeaderBytes int
	// Grace is how long a shutdown waits for requests in flight.
	Grace time.Duration
	// Logger receives the server's own errors. Nil: slog.Default().
	Logger *slog.Logger
}

func (o *ServerOptions) defaults() {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// ErrGraceExceeded is returned by Serve when requests were still in flight
// at the end of the grace period.
var ErrGraceExceeded = errors.New("grace period ended with requests in flight")

// Serve serves h on l until ctx is done. Then it stops accepting
// connections, lets the requests in flight finish for up to Grace, and
// returns nil, or ErrGraceExceeded if it had to cut some.
func Serve(ctx context.Context, l net.Listener, h http.Handler, o ServerOptions) error {
	o.defaults()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(writeDeadlineListener{l, o.WriteTimeout}) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.Grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // http.ErrServerClosed
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("%w (%s): %v", ErrGraceExceeded, o.Grace, err)
	}
	return nil
}

// writeDeadlineListener gives every accepted connection a per-write
// deadline.
type writeDeadlineListener struct {
	net.Listener
	timeout time.Duration
}

func (l writeDeadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeDeadlineConn{Conn: c, timeout: l.timeout}, nil
}

type writeDeadlineConn struct {
	net.Conn
	timeout  time.Duration
	deadline time.Time // the write deadline set last
}

func (c *writeDeadlineConn) Write(b []byte) (int, error) {
	// Writes on one connection are not concurrent (net/http serialises
	// them; after a hijack the owner does), so deadline needs no lock.
	if now := time.Now(); c.deadline.Sub(now) < c.timeout/2 {
		c.deadline = now.Add(c.timeout)
		if err := c.Conn.SetWriteDeadline(c.deadline); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

// CloseWrite keeps the half-close net/http uses before closing a
// connection after an error response.
func (c *writeDeadlineConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
