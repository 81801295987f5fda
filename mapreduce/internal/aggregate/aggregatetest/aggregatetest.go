// Package aggregatetest holds the segments the aggregation benchmarks
// share: package aggregate's stages and package job's commit measure the
// same records.
package aggregatetest

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"shortfleet/logfmt"
	"shortfleet/logfmt/logfmttest"
)

// Start is when the local segments' records begin.
var Start = time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)

// LocalSegments writes, once per process, 16 proxies' worth of realistic
// sealed segments (1,000,000 records) to a temporary folder, as a proxy
// would: batches of 120 cut every flush, compacted at seal. It returns
// their bytes and removes the folder.
var LocalSegments = sync.OnceValues(func() ([][]byte, error) {
	dir, err := os.MkdirTemp("", "shortfleet-segments-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	const proxies, perProxy = 16, 62_500
	var out [][]byte
	for p := range proxies {
		pd := filepath.Join(dir, fmt.Sprint(p))
		w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: pd, Proxy: fmt.Sprintf("proxy-%02d", p+1), FlushRows: 120, FlushInterval: time.Hour, QueueBatches: 1000},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return nil, err
		}
		g := logfmttest.New(uint64(p), 1_000_000, Start, 5*time.Minute)
		var r logfmt.Record
		for i := range perProxy {
			g.Next(&r, i, perProxy)
			w.Append(&r)
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		entries, _ := logfmt.ReadManifest(pd)
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(pd, e.Name))
			if err != nil {
				return nil, err
			}
			out = append(out, data)
		}
	}
	return out, nil
})
