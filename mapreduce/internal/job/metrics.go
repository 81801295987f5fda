package job

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes a job's counters to Prometheus.
type Collector struct {
	j       *Job
	skipped func() uint64
}

// NewCollector returns a Collector; skipped counts scheduled runs skipped
// because the previous one was still running.
func NewCollector(j *Job, skipped func() uint64) *Collector { return &Collector{j, skipped} }

func mdesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("shortfleet_mapreduce_"+name, help, labels, nil)
}

var (
	mRuns        = mdesc("runs_total", "Runs and recomputes, by outcome: ok, failed, locked (another run held the lock).", "outcome")
	mSkipped     = mdesc("runs_skipped_overrun_total", "Scheduled runs skipped because the previous run was still going.")
	mSegments    = mdesc("segments_ingested_total", "Segments ingested.")
	mQuarantined = mdesc("segments_quarantined_total", "Segments set aside as corrupt, with the reason in the ledger.")
	mFailed      = mdesc("segments_failed_total", "Segments a run left pending, to retry next run, by reason: unknown_version (a format version this build does not read: upgrade mapreduce) or other (not pulled or not archived).", "reason")
	mRecords     = mdesc("records_total", "Records read from ingested segments.")
	mClicks      = mdesc("clicks_total", "Clicks added to the stats.")
	mPending     = mdesc("segments_pending", "Segments the last run found pending.")
	mLastSuccess = mdesc("last_success_timestamp_seconds", "When the last successful run finished.")
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mRuns, mSkipped, mSegments, mQuarantined, mFailed, mRecords, mClicks, mPending, mLastSuccess} {
		ch <- d
	}
	c.j.runSeconds.Describe(ch)
	c.j.stageSeconds.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	j := c.j
	cnt := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	runs, failed := j.runs.Load(), j.failedRuns.Load()
	cnt(mRuns, runs-failed, "ok")
	cnt(mRuns, failed, "failed")
	cnt(mRuns, j.lockedRuns.Load(), "locked")
	cnt(mSkipped, c.skipped())
	cnt(mSegments, j.segments.Load())
	cnt(mQuarantined, j.quarantined.Load())
	cnt(mFailed, j.unknownVersion.Load(), "unknown_version")
	cnt(mFailed, j.failedSegments.Load(), "other")
	cnt(mRecords, j.records.Load())
	cnt(mClicks, j.clicks.Load())
	ch <- prometheus.MustNewConstMetric(mPending, prometheus.GaugeValue, float64(j.lastPending.Load()))
	ch <- prometheus.MustNewConstMetric(mLastSuccess, prometheus.GaugeValue, float64(j.lastSuccess.Load()))
	j.runSeconds.Collect(ch)
	j.stageSeconds.Collect(ch)
}
