// Package netwait waits for test servers to accept connections.
package netwait

import (
	"fmt"
	"net"
	"time"
)

// Listening waits until a TCP connection to addr succeeds, for at most
// timeout.
func Listening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
