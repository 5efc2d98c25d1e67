package discover

import (
	"context"
	"net/netip"
	"time"
)

// SelfSetter receives discovered addresses; *hostguard.Guard is one.
type SelfSetter interface {
	SetSelf([]netip.Addr)
}

// Fill runs a discovery and, when it succeeds, makes s use the addresses.
// On error s is left as it was, and the partial result is returned with the
// error. Call it again to refresh on demand (on SIGHUP, say).
func Fill(ctx context.Context, s SelfSetter, o Options) (*Result, error) {
	res, err := Discover(ctx, o)
	if err == nil {
		s.SetSelf(res.Addrs())
	}
	return res, err
}

// Watch calls Fill every interval until ctx is done, and hands each outcome
// to report (which may be nil). A failed refresh keeps the previous
// addresses: a metadata service that is briefly away does not empty
// "@self". The swap is atomic; requests never wait for a refresh.
func Watch(ctx context.Context, s SelfSetter, o Options, every time.Duration, report func(*Result, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			res, err := Fill(ctx, s, o)
			if report != nil {
				report(res, err)
			}
		}
	}
}
