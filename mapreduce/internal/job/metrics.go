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

// Stages are a run's stages, as shortfleet_mapreduce_stage_duration_seconds
// labels them: list (every proxy's pending segments, checked against the
// ledger), map (pull, verify, decode and classify every pending segment,
// in parallel, and fold each one that passes its checks into the run's
// per-partition totals), reduce (now only hands the totals on: kept so
// dashboards and the crash tests' stage names stay), commit (the one transaction: aggregates and ledger) and ack (tell the
// proxies what the ledger holds).
var Stages = []string{"list", "map", "reduce", "commit", "ack"}

// Buckets of the run and stage histograms: a run of a quiet fleet takes
// tens of milliseconds, one catching up on hours of segments minutes; the
// schedule is every five minutes.
var (
	runBuckets   = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	stageBuckets = []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
)

func newDurations() (prometheus.Histogram, *prometheus.HistogramVec) {
	run := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shortfleet_mapreduce_run_duration_seconds",
		Help:    "Time of each run that took the run lock, from its start to the lock released, whether it succeeded or failed.",
		Buckets: runBuckets})
	stage := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shortfleet_mapreduce_stage_duration_seconds",
		Help:    "Time of each run's stages: list, map, reduce, commit, ack; a stage that fails is timed too, the stages after it are not.",
		Buckets: stageBuckets}, []string{"stage"})
	for _, s := range Stages {
		stage.WithLabelValues(s)
	}
	return run, stage
}

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
