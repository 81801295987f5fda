// Package metrics exposes the proxy's counters in the Prometheus text
// format. The hot path only bumps atomic counters; this collector reads
// them when scraped, so metrics cost the redirect nothing.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"shortfleet/logfmt"
	"shortfleet/proxy/internal/links"
)

// Sources are the functions the collector reads at scrape time.
type Sources struct {
	Statuses  func() map[int]uint64
	Links     func() links.Stats
	Ready     func() (bool, string)
	LagNS     func() int64
	Watermark func() int64
	Log       func() logfmt.WriterStats
	LogOpen   func() bool // nil: the log is always open
	Segments  func() (onDisk, pending int)
	// Redirects is the redirect latency histogram; nil: none.
	Redirects *Histogram
}

type collector struct{ src Sources }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("shortfleet_proxy_"+name, help, labels, nil)
}

var (
	dRequests     = desc("requests_total", "Requests answered, by status.", "status")
	dLookups      = desc("lookups_total", "Link lookups by where they were answered: hit (cache), replica, primary, miss (not found).", "outcome")
	dHitRatio     = desc("cache_hit_ratio", "Share of link lookups answered from the cache since start.")
	dPrimaryAsks  = desc("primary_asks_total", "Lookups asked of the primary (read-your-writes, or replica down).")
	dPrimaryErrs  = desc("primary_ask_errors_total", "Asks of the primary that failed or found no slot.")
	dReplicaErrs  = desc("replica_errors_total", "Replica lookups that failed.")
	dConflicts    = desc("replica_conflict_retries_total", "Replica lookups retried after a recovery conflict (SQLSTATE 40001).")
	dBatches      = desc("replica_batches_total", "Replica queries run for lookups; lookups per batch = replica lookups / this.")
	dWindow       = desc("window_rejections_total", "Codes above the recent window answered 404 without a database.")
	dBadRules     = desc("links_bad_rules_total", "Lookups of links whose stored redirect rules did not parse; they redirect to their own target.")
	dEvictions    = desc("feed_evictions_total", "Cache evictions by the change feed.")
	dAhead        = desc("feed_ahead_evictions_total", "Cache evictions for changes read on the primary before the replica replayed them.")
	dCacheEntries = desc("cache_entries", "Links in the cache.")
	dCacheBytes   = desc("cache_bytes", "Estimated bytes the cache holds.")
	dAliases      = desc("aliases", "Aliases known.")
	dLag          = desc("replica_lag_seconds", "Replica replay lag at the last poll; -1 if unknown.")
	dWatermark    = desc("link_watermark", "Largest link id the replica has.")
	dReady        = desc("ready", "1 if ready for traffic.")
	dRecords      = desc("log_records_total", "Access log records: appended, written, dropped, recovered.", "result")
	dLogBytes     = desc("log_bytes_total", "Bytes written to open access log segments: uncompressed Arrow IPC, as appended before sealing, not what stays on disk (see log_sealed_bytes_total).")
	dSealedBytes  = desc("log_sealed_bytes_total", "Bytes of the access log segments sealed: compacted, zstd-compressed Arrow IPC, as kept on disk. Divided by log_records_total{result=\"written\"} once everything is sealed, the bytes on disk per logged request.")
	dLogOpen      = desc("log_open", "1 if the access log folder is open; 0 while it could not be opened (unwritable, full) and every record is dropped, or with logging off.")
	dSealed       = desc("log_segments_sealed_total", "Segments sealed.")
	dRetained     = desc("log_segments_deleted_total", "Segments deleted by retention.")
	dWriteErrs    = desc("log_write_errors_total", "Failed log writes, seals and manifest appends.")
	dOnDisk       = desc("segments_on_disk", "Sealed segments on disk.")
	dPending      = desc("segments_pending", "Sealed segments the mapreduce job has not acknowledged.")
	dRedirectTime = desc("redirect_duration_seconds", "Handler time of the requests answered with a redirect (3xx), cached or not: from when the request had been read to when its answer and log record were ready, before the answer is written to the socket.")
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dRequests, dLookups, dHitRatio, dPrimaryAsks, dPrimaryErrs, dReplicaErrs,
		dConflicts, dBatches, dWindow, dBadRules, dEvictions, dAhead, dCacheEntries, dCacheBytes, dAliases, dLag, dWatermark, dReady, dRecords,
		dLogBytes, dSealedBytes, dLogOpen, dSealed, dRetained, dWriteErrs, dOnDisk, dPending, dRedirectTime} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for code, n := range c.src.Statuses() {
		counter(dRequests, n, strconv.Itoa(code))
	}
	ls := c.src.Links()
	counter(dLookups, ls.Hits, "hit")
	counter(dLookups, ls.ReplicaLookups, "replica")
	counter(dLookups, ls.PrimaryAsks, "primary")
	counter(dLookups, ls.Misses, "miss")
	ratio := 0.0
	if total := ls.Hits + ls.CacheMisses; total > 0 {
		ratio = float64(ls.Hits) / float64(total)
	}
	gauge(dHitRatio, ratio)
	counter(dPrimaryAsks, ls.PrimaryAsks)
	counter(dPrimaryErrs, ls.PrimaryErrors)
	counter(dReplicaErrs, ls.ReplicaErrors)
	counter(dConflicts, ls.ConflictRetries)
	counter(dWindow, ls.WindowRejections)
	counter(dBadRules, ls.BadRules)
	counter(dBatches, ls.Batches)
	counter(dEvictions, ls.Evictions)
	counter(dAhead, ls.AheadEvictions)
	gauge(dCacheEntries, float64(ls.CacheEntries))
	gauge(dCacheBytes, float64(ls.CacheBytes))
	gauge(dAliases, float64(ls.Aliases))
	lag := float64(c.src.LagNS())
	if lag >= 0 {
		lag /= 1e9
	}
	gauge(dLag, lag)
	gauge(dWatermark, float64(c.src.Watermark()))
	ready := 0.0
	if ok, _ := c.src.Ready(); ok {
		ready = 1
	}
	gauge(dReady, ready)
	st := c.src.Log()
	counter(dRecords, st.Appended, "appended")
	counter(dRecords, st.Written, "written")
	counter(dRecords, st.Dropped, "dropped")
	counter(dRecords, st.Recovered, "recovered")
	counter(dLogBytes, st.Bytes)
	counter(dSealedBytes, st.SealedBytes)
	open := 1.0
	if c.src.LogOpen != nil && !c.src.LogOpen() {
		open = 0
	}
	gauge(dLogOpen, open)
	counter(dSealed, st.Sealed)
	counter(dRetained, st.Retained)
	counter(dWriteErrs, st.WriteErrors)
	onDisk, pending := c.src.Segments()
	gauge(dOnDisk, float64(onDisk))
	gauge(dPending, float64(pending))
	if c.src.Redirects != nil {
		ch <- c.src.Redirects.metric(dRedirectTime)
	}
}

// Registry returns a registry with the proxy's metrics and the Go
// runtime's and process's.
func Registry(src Sources) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
