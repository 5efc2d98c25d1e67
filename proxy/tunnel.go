package proxy

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Tunnels. After the upstream answers a WebSocket handshake with 101
// Switching Protocols, the proxy copies bytes both ways without reading
// them: only then, and only for WebSocket (see requestHead.upgrade). A
// tunnel is closed when neither side has sent a byte for the tunnel idle
// timeout, and at the end of the grace period of a shutdown; both server
// forms register theirs here.

// DefaultTunnelIdleTimeout closes a tunnel in which nothing moved for this
// long (nginx closes a WebSocket after proxy_read_timeout, 60 s, of upstream
// silence).
const DefaultTunnelIdleTimeout = 60 * time.Second

// tunnel is one open tunnel.
type tunnel struct {
	p     *Proxy
	conns []net.Conn
	last  atomic.Int64 // unix nanoseconds of the last byte in either direction
	timer *time.Timer
	once  sync.Once
}

// openTunnel registers a tunnel between conns and starts its idle watch.
func (p *Proxy) openTunnel(conns ...net.Conn) *tunnel {
	t := &tunnel{p: p, conns: conns}
	t.touch()
	if p.metrics != nil {
		p.metrics.tunnelsOpen.Inc()
		p.metrics.tunnels.Inc()
	}
	// The timer is set before the tunnel is registered: closeTunnels (a
	// shutdown) may close it from another goroutine as soon as it is.
	t.timer = time.AfterFunc(p.tunnelIdle, t.watch)
	p.tunnelsMu.Lock()
	p.tunnels[t] = struct{}{}
	p.tunnelsMu.Unlock()
	return t
}

func (t *tunnel) touch() { t.last.Store(time.Now().UnixNano()) }

// watch runs when the idle timeout may have passed: it closes the tunnel,
// or waits again for as long as is left since the last byte.
func (t *tunnel) watch() {
	idle := time.Since(time.Unix(0, t.last.Load()))
	if left := t.p.tunnelIdle - idle; left > 0 {
		t.timer.Reset(left)
		return
	}
	t.close()
}

// close closes the tunnel's connections and unregisters it; it may be
// called more than once.
func (t *tunnel) close() {
	t.once.Do(func() {
		t.timer.Stop()
		for _, c := range t.conns {
			c.Close()
		}
		t.p.tunnelsMu.Lock()
		delete(t.p.tunnels, t)
		t.p.tunnelsMu.Unlock()
		if t.p.metrics != nil {
			t.p.metrics.tunnelsOpen.Dec()
		}
	})
}

// track wraps a connection of the tunnel so that every byte read from it or
// written to it counts as activity, and closing it closes the tunnel.
func (t *tunnel) track(c net.Conn) net.Conn { return &trackedConn{Conn: c, t: t} }

type trackedConn struct {
	net.Conn
	t *tunnel
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.t.touch()
	}
	return n, err
}

func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.t.touch()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.t.close()
	return nil
}

// closeTunnels closes every open tunnel and returns how many there were.
func (p *Proxy) closeTunnels() int {
	p.tunnelsMu.Lock()
	open := make([]*tunnel, 0, len(p.tunnels))
	for t := range p.tunnels {
		open = append(open, t)
	}
	p.tunnelsMu.Unlock()
	for _, t := range open {
		t.close()
	}
	return len(open)
}

// endTunnels closes the tunnels still open at the end of a shutdown's
// grace period and logs how many: the same for both server forms.
func (p *Proxy) endTunnels(log *slog.Logger) {
	if n := p.closeTunnels(); n > 0 {
		log.Info("hostguard proxy: closed WebSocket tunnels at the end of the grace period", "tunnels", n)
	}
}

// openTunnels returns how many tunnels are open.
func (p *Proxy) openTunnels() int {
	p.tunnelsMu.Lock()
	defer p.tunnelsMu.Unlock()
	return len(p.tunnels)
}

// pipe copies bytes both ways between client and up, first those that each
// side sent early (already read with the handshake), until both directions
// end or the tunnel is closed. A side that ends its output is half-closed
// on the other, so a WebSocket close handshake completes.
func (t *tunnel) pipe(client, up net.Conn, clientEarly, upEarly []byte) {
	defer t.close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if len(clientEarly) == 0 || writeAll(up, clientEarly) {
			t.p.bufs.copyStream(up, client)
		}
		closeWrite(up)
	}()
	if len(upEarly) == 0 || writeAll(client, upEarly) {
		t.p.bufs.copyStream(client, up)
	}
	closeWrite(client)
	wg.Wait()
}

func writeAll(w io.Writer, b []byte) bool {
	_, err := w.Write(b)
	return err == nil
}

// copyStream copies until src ends or either side fails.
func (bp *bufferPool) copyStream(dst io.Writer, src io.Reader) {
	buf := bp.Get()
	defer bp.Put(buf)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func closeWrite(c net.Conn) {
	for {
		switch x := c.(type) {
		case interface{ CloseWrite() error }:
			_ = x.CloseWrite()
			return
		case *trackedConn:
			c = x.Conn
		default:
			_ = c.Close()
			return
		}
	}
}
