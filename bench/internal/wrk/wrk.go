// Package wrk runs wrk with shortfleet's Lua scripts and parses the summary
// the scripts print.
package wrk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Options are the wrk settings of one run.
type Options struct {
	URL         string
	Script      string
	Threads     int
	Connections int
	Duration    time.Duration
	Env         []string // e.g. CODES=..., ZIPF_S=...
}

// Result is a run's summary.
type Result struct {
	Requests      int64   `json:"requests"`
	DurationUS    int64   `json:"duration_us"`
	Bytes         int64   `json:"bytes"`
	ErrorsConnect int64   `json:"errors_connect"`
	ErrorsRead    int64   `json:"errors_read"`
	ErrorsWrite   int64   `json:"errors_write"`
	ErrorsStatus  int64   `json:"errors_status"`
	ErrorsTimeout int64   `json:"errors_timeout"`
	LatMeanUS     float64 `json:"lat_mean_us"`
	LatP50US      int64   `json:"lat_p50_us"`
	LatP90US      int64   `json:"lat_p90_us"`
	LatP99US      int64   `json:"lat_p99_us"`
	LatP999US     int64   `json:"lat_p999_us"`
	LatMaxUS      int64   `json:"lat_max_us"`
	// CPU is the user+system time wrk itself used.
	CPU time.Duration `json:"-"`
}

// RPS is requests per second.
func (r Result) RPS() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// Errors is the sum of every kind of error.
func (r Result) Errors() int64 {
	return r.ErrorsConnect + r.ErrorsRead + r.ErrorsWrite + r.ErrorsStatus + r.ErrorsTimeout
}

// Command is the command line a run uses, for reports.
func (o Options) Command() string {
	return strings.Join(append(append([]string{}, o.Env...), "wrk", "-t"+strconv.Itoa(o.Threads), "-c"+strconv.Itoa(o.Connections),
		"-d"+o.Duration.String(), "--latency", "-s", o.Script, o.URL), " ")
}

// Run runs wrk once.
func Run(ctx context.Context, o Options) (Result, error) {
	cmd := exec.CommandContext(ctx, "wrk", "-t"+strconv.Itoa(o.Threads), "-c"+strconv.Itoa(o.Connections),
		"-d"+strconv.Itoa(int(o.Duration.Seconds()))+"s", "--latency", "--timeout", "5s", "-s", o.Script, o.URL)
	cmd.Env = append(os.Environ(), o.Env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("wrk: %w: %s", err, out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if js, ok := strings.CutPrefix(line, "WRK_JSON "); ok {
			var r Result
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				return Result{}, fmt.Errorf("parse wrk summary %q: %w", js, err)
			}
			r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			return r, nil
		}
	}
	return Result{}, fmt.Errorf("wrk printed no summary: %s", out.String())
}
