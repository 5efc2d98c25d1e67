// Package ratelog is a rate-limited slog front: a burst of records, then a
// steady rate, so that a scanner cannot flood the log; the first record
// after some were left out says how many.
//
// It is the proxy module's own copy of the root module's internal/ratelog:
// a module can be paired with any version of another by minimal version
// selection, so it imports no other module's internal packages. The
// release module's tests keep the two copies identical.
package ratelog

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Logger logs through an slog.Logger at most burst records at once and
// then one per interval.
type Logger struct {
	log        *slog.Logger
	limit      *rate.Limiter
	suppressed atomic.Uint64
}

// New returns a Logger that writes to log: a burst of burst records, then
// one every interval.
func New(log *slog.Logger, interval time.Duration, burst int) *Logger {
	return &Logger{log: log, limit: rate.NewLimiter(rate.Every(interval), burst)}
}

// Log writes a record unless the limit is reached; then it only counts it,
// and the next record written carries the count as "suppressed".
func (l *Logger) Log(level slog.Level, msg string, attrs ...slog.Attr) {
	if !l.limit.Allow() {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", n))
	}
	l.log.LogAttrs(context.Background(), level, msg, attrs...)
}

// Suppressed returns how many records were left out since the last one
// written.
func (l *Logger) Suppressed() uint64 { return l.suppressed.Load() }
