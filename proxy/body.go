package proxy

import (
	"errors"

	"github.com/hostguard/hostguard/proxy/internal/wire"
)

// The proxy's part of message bodies (the readers and the chunked encoder
// are in internal/wire): which trailer fields a request may carry.

// requestTrailerField checks a request's trailer field line: well formed,
// and not one that only a header may carry.
func requestTrailerField(line []byte) error {
	f, err := parseField(line)
	if err != nil {
		return errTrailer
	}
	if forbiddenInTrailer(f.kind) {
		return errTrailerField
	}
	return nil
}

// responseTrailerField checks a response's trailer field line: well
// formed (the fields are dropped).
func responseTrailerField(line []byte) error {
	if _, err := parseField(line); err != nil {
		return wire.ErrTrailer
	}
	return nil
}

// forbiddenInTrailer: the fields a trailer may not carry (RFC 9110
// §6.5.1): framing, the host, hop-by-hop fields and what the proxy decides
// about the client.
func forbiddenInTrailer(k fieldKind) bool {
	switch k {
	case kindOther, kindUserAgent, kindUnderscore:
		return false
	}
	return true
}

// errClientGone ends an exchange whose client left.
var errClientGone = errors.New("the client closed its connection")
