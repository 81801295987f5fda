// Package daemon holds the mapreduce daemon's scheduling rule: a scheduled
// tick that fires while the previous run is still going is skipped, not
// queued, so runs never pile up behind a slow one. A skip is logged and
// counted for the runs_skipped_overrun_total metric.
package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// Runs runs a job on scheduled ticks, one run at a time in this process
// (the job's advisory lock keeps it so across the fleet).
type Runs struct {
	run     func(context.Context)
	logger  *slog.Logger
	running atomic.Bool
	skipped atomic.Uint64
}

// New returns Runs that call run on each tick that is not skipped.
func New(run func(context.Context), logger *slog.Logger) *Runs {
	return &Runs{run: run, logger: logger}
}

// Tick runs the job and returns true, or, if a run started by an earlier
// tick is still going, logs and counts the skip and returns false at once.
func (r *Runs) Tick(ctx context.Context) bool {
	if !r.running.CompareAndSwap(false, true) {
		n := r.skipped.Add(1)
		r.logger.Warn("previous run still going; this tick is skipped", "skipped_total", n)
		return false
	}
	defer r.running.Store(false)
	r.run(ctx)
	return true
}

// Skipped is how many ticks have been skipped because a run was still
// going.
func (r *Runs) Skipped() uint64 { return r.skipped.Load() }
