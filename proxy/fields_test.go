package proxy

import "testing"

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		name string
		want fieldKind
	}{
		{"Host", kindHost}, {"HOST", kindHost}, {"host", kindHost},
		{"Content-Length", kindContentLength}, {"transfer-ENCODING", kindTransferEncoding},
		{"Connection", kindConnection}, {"Upgrade", kindUpgrade}, {"Expect", kindExpect},
		{"TE", kindHop}, {"Trailer", kindHop}, {"Keep-Alive", kindHop}, {"Proxy-Connection", kindHop},
		{"Proxy-Authenticate", kindHop}, {"Proxy-Authorization", kindHop},
		{"X-Forwarded-For", kindXFF}, {"x-forwarded-host", kindXFH}, {"X-Forwarded-Proto", kindXFP},
		{"X-Forwarded-Port", kindForwarding}, {"X-Real-IP", kindForwarding}, {"Forwarded", kindForwarded},
		{"User-Agent", kindUserAgent},
		// Underscore spellings: forwarding and framing names in disguise
		// are always dropped; ordinary ones follow KeepUnderscoreHeaders.
		// (even from trusted proxies).
		{"X_Forwarded_For", kindDisguised}, {"X_Forwarded_Host", kindDisguised}, {"X_Real_IP", kindDisguised},
		{"X_Host", kindDisguised}, {"Content_Length", kindHop}, {"Transfer_Encoding", kindHop},
		// Fields read as the host by some stacks: dropped from everyone.
		{"X-Host", kindHostAlias}, {"x-original-host", kindHostAlias}, {"X-Forwarded-Server", kindForwarding},
		{"X_Custom", kindUnderscore}, {"User_Agent", kindUnderscore},
		// Near misses are ordinary fields.
		{"Hosts", kindOther}, {"Hos", kindOther}, {"X-Forwarded-", kindOther}, {"X-Forwarded", kindOther},
		{"Content-Lengths", kindOther}, {"Accept", kindOther}, {"", kindOther},
		{"A-Very-Long-Header-Name-Longer-Than-Any-Known-One", kindOther},
	} {
		if got := classify([]byte(tt.name)); got != tt.want {
			t.Errorf("classify(%q) = %d, want %d", tt.name, got, tt.want)
		}
	}
}
