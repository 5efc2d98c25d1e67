package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
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

// Serve serves h on l until ctx is done. Then it stops accepting
// connections, lets the requests in flight finish for up to Grace, and
// returns nil, or ErrGraceExceeded if it had to cut some.
func Serve(ctx context.Context, l net.Listener, h http.Handler, o ServerOptions) error {
	o.defaults()
	srv := &http.Server{
		Handler:           bodyDeadlines(h, o.BodyTimeout),
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	return serveUntilDone(ctx, l, o, srv.Serve, func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if err != nil {
			_ = srv.Close()
		}
		return err
	})
}

// serveUntilDone runs serve on l, with per-write deadlines, until ctx is
// done; then it calls shutdown with the grace period as its deadline and
// waits for serve to return. A shutdown error means requests were cut.
func serveUntilDone(ctx context.Context, l net.Listener, o ServerOptions,
	serve func(net.Listener) error, shutdown func(context.Context) error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve(writeDeadlineListener{l, o.WriteTimeout}) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.Grace)
	defer cancel()
	err := shutdown(sctx)
	<-errc // the server's own "closed" error
	if err != nil {
		return fmt.Errorf("%w (%s): %v", ErrGraceExceeded, o.Grace, err)
	}
	return nil
}

// bodyDeadlines gives every read of a request body a sliding deadline.
func bodyDeadlines(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			b := &slidingBody{ReadCloser: r.Body, deadline: slidingDeadline{timeout: timeout}, set: rc.SetReadDeadline}
			// The body may be wrapped on its way (ReverseProxy does);
			// the context says whether it timed out.
			r = r.WithContext(context.WithValue(r.Context(), slidingBodyKey{}, b))
			r.Body = b
		}
		h.ServeHTTP(w, r)
	})
}

type slidingBodyKey struct{}

// slidingBody reads a request body with a sliding read deadline on the
// client's connection, and remembers whether a read timed out.
type slidingBody struct {
	io.ReadCloser
	deadline slidingDeadline
	set      func(time.Time) error
	timedOut atomic.Bool
}

func (b *slidingBody) Read(p []byte) (int, error) {
	if at, move := b.deadline.next(); move {
		if err := b.set(at); err != nil {
			return 0, err
		}
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && isTimeout(err) {
		b.timedOut.Store(true)
	}
	return n, err
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
	return &deadlineConn{Conn: c, write: slidingDeadline{timeout: l.timeout}}, nil
}

// deadlineConn gives every read, every write or both a deadline, each
// direction with its own slidingDeadline (a zero timeout: none). Reads are
// not concurrent with reads, nor writes with writes (the server serialises
// them; after a hijack the owner does).
type deadlineConn struct {
	net.Conn
	read, write slidingDeadline
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if at, move := c.read.next(); move {
		if err := c.Conn.SetReadDeadline(at); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if at, move := c.write.next(); move {
		if err := c.Conn.SetWriteDeadline(at); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

// CloseWrite keeps the half-close net/http uses before closing a
// connection after an error response.
func (c *deadlineConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// slidingDeadline keeps a connection's read or write deadline timeout
// ahead of each operation, like nginx's send_timeout and proxy_read_timeout.
// It moves the deadline only when half of it has passed, sparing a timer
// update per operation, so an operation has between half the timeout and
// all of it.
type slidingDeadline struct {
	timeout time.Duration // zero: no deadline
	at      time.Time     // the deadline set last
}

// next returns the deadline to set before an operation, and false when
// there is no timeout or the deadline set last still has more than half of
// it to run.
func (d *slidingDeadline) next() (time.Time, bool) {
	if d.timeout <= 0 {
		return time.Time{}, false
	}
	if now := time.Now(); d.at.Sub(now) < d.timeout/2 {
		d.at = now.Add(d.timeout)
		return d.at, true
	}
	return time.Time{}, false
}
