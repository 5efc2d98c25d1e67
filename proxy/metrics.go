package proxy

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the proxy's Prometheus metrics, in a registry of their own.
type Metrics struct {
	reg             *prometheus.Registry
	accepted        prometheus.Counter
	rejected        *prometheus.CounterVec
	upstreamErrors  *prometheus.CounterVec
	upstreamLatency prometheus.Histogram
	selfAddrs       prometheus.Gauge
	clientErrors    *prometheus.CounterVec
	tunnels         prometheus.Counter
	tunnelsOpen     prometheus.Gauge
}

// NewMetrics creates the metrics, with Go runtime and process collectors:
//
//	hostguard_requests_accepted_total
//	hostguard_requests_rejected_total{reason,enforced} reason: hostguard.Reason.Label ("not_allowed", ...);
//	                                            enforced="false" in report-only mode
//	hostguard_upstream_errors_total{kind}       unreachable, timeout, canceled
//	hostguard_upstream_duration_seconds         until the response headers
//	hostguard_self_addresses                    addresses @self stands for
//	hostguard_client_errors_total{kind}         requests refused for their form: malformed,
//	                                            unsupported, too_large, timeout, tls
//	hostguard_tunnels_total                     WebSocket tunnels opened
//	hostguard_tunnels_open                      WebSocket tunnels open now
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostguard_requests_accepted_total", Help: "Requests whose Host passed the allow list.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostguard_requests_rejected_total", Help: "Requests the list rejects, by reason (a stable label such as not_allowed); enforced=\"false\" in report-only mode, where they are served.",
		}, []string{"reason", "enforced"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostguard_upstream_errors_total", Help: "Requests the upstream did not answer, by kind.",
		}, []string{"kind"}),
		upstreamLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hostguard_upstream_duration_seconds", Help: "Time from sending a request upstream to its response headers.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		selfAddrs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hostguard_self_addresses", Help: "Number of addresses @self stands for.",
		}),
		clientErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostguard_client_errors_total", Help: "Requests refused for their form (not their Host), by kind.",
		}, []string{"kind"}),
		tunnels: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostguard_tunnels_total", Help: "WebSocket tunnels opened after a 101 from the upstream.",
		}),
		tunnelsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hostguard_tunnels_open", Help: "WebSocket tunnels open now.",
		}),
	}
	m.reg.MustRegister(m.accepted, m.rejected, m.upstreamErrors, m.upstreamLatency, m.selfAddrs,
		m.clientErrors, m.tunnels, m.tunnelsOpen,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Register adds a collector of the program that serves the proxy (such as
// a build-info gauge) to the metrics Handler serves; it fails as
// prometheus.Registerer.Register does, on a name already taken.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// SetSelf records how many addresses @self stands for.
func (m *Metrics) SetSelf(n int) { m.selfAddrs.Set(float64(n)) }

// timedTransport times the upstream's answers of the net/http form, to
// their response head: in the histogram, when there is one, and in the
// access log's record of the request, when it has one.
type timedTransport struct {
	base http.RoundTripper
	h    prometheus.Histogram // nil: no metrics
}

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		d := time.Since(start)
		if t.h != nil {
			t.h.Observe(d.Seconds())
		}
		if rec := accessOf(r); rec != nil {
			rec.ttfb = d
		}
	}
	return resp, err
}

// timeUpstream times rt's answers; m may be nil.
func timeUpstream(rt http.RoundTripper, m *Metrics) http.RoundTripper {
	t := timedTransport{base: rt}
	if m != nil {
		t.h = m.upstreamLatency
	}
	return t
}
