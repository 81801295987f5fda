package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"shortfleet/logfmt"
	"shortfleet/proxy/internal/links"
)

// TestExposition scrapes the registry in the Prometheus text format and
// checks every series an operator's dashboards and alerts use.
func TestExposition(t *testing.T) {
	redirects := NewHistogram(RedirectBuckets)
	for _, d := range []time.Duration{3 * time.Microsecond, 7 * time.Microsecond, 2 * time.Millisecond} {
		redirects.Observe(int64(d))
	}
	reg := Registry(Sources{
		Redirects: redirects,
		Statuses:  func() map[int]uint64 { return map[int]uint64{302: 90, 404: 10} },
		Links:     func() links.Stats { return links.Stats{Hits: 75, CacheMisses: 25, PrimaryAsks: 3, ReplicaLookups: 22} },
		Ready:     func() (bool, string) { return false, "replica lags 12s" },
		LagNS:     func() int64 { return 12_000_000_000 },
		Watermark: func() int64 { return 4242 },
		Log: func() logfmt.WriterStats {
			return logfmt.WriterStats{Written: 100, Dropped: 7, Bytes: 7200, SealedBytes: 2100, Sealed: 3}
		},
		LogOpen:  func() bool { return false },
		Segments: func() (int, int) { return 5, 2 },
	})
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`shortfleet_proxy_requests_total{status="302"} 90`,
		`shortfleet_proxy_requests_total{status="404"} 10`,
		`shortfleet_proxy_cache_hit_ratio 0.75`,
		`shortfleet_proxy_primary_asks_total 3`,
		`shortfleet_proxy_lookups_total{outcome="hit"} 75`,
		`shortfleet_proxy_replica_lag_seconds 12`,
		`shortfleet_proxy_link_watermark 4242`,
		`shortfleet_proxy_ready 0`,
		`shortfleet_proxy_log_records_total{result="written"} 100`,
		`shortfleet_proxy_log_records_total{result="dropped"} 7`,
		`shortfleet_proxy_log_bytes_total 7200`,
		`shortfleet_proxy_log_sealed_bytes_total 2100`,
		`shortfleet_proxy_log_open 0`,
		`shortfleet_proxy_log_segments_sealed_total 3`,
		`shortfleet_proxy_segments_pending 2`,
		`shortfleet_proxy_segments_on_disk 5`,
		`shortfleet_proxy_redirect_duration_seconds_bucket{le="5e-06"} 1`,
		`shortfleet_proxy_redirect_duration_seconds_bucket{le="1e-05"} 2`,
		`shortfleet_proxy_redirect_duration_seconds_bucket{le="0.0025"} 3`,
		`shortfleet_proxy_redirect_duration_seconds_bucket{le="+Inf"} 3`,
		`shortfleet_proxy_redirect_duration_seconds_sum 0.00201`,
		`shortfleet_proxy_redirect_duration_seconds_count 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}
