// Package aggregatetest holds the test data the tests and benchmarks of
// package aggregate and package job share: the records they write by hand,
// the dimension settings they classify them with, and the segments the
// aggregation benchmarks measure (aggregate's stages and job's commit
// measure the same records).
package aggregatetest

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"shortfleet/logfmt"
	"shortfleet/logfmt/logfmttest"
	"shortfleet/mapreduce/internal/dims"
	"shortfleet/mapreduce/internal/dims/dimstest"
)

// Start is when the test records begin, the local segments' and those the
// tests write by hand: the top of an hour, in the afternoon of a UTC day.
var Start = time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)

// User agents of the test records: a browser, and a crawler the
// classifier counts as a bot.
const (
	Chrome    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	Googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

// Dims returns dimension settings for a test: a GeoIP database holding the
// test networks (package dimstest), written to a folder of the test's, and
// a fixed salt.
func Dims(t testing.TB) dims.Config {
	t.Helper()
	db := filepath.Join(t.TempDir(), "geo.mmdb")
	if err := dimstest.WriteGeoDB(db); err != nil {
		t.Fatal(err)
	}
	return dims.Config{GeoIPPath: db, Salt: []byte("job-test-salt-0123456789")}
}

// Click returns the record of a request at at for link, answered with
// status, from a Chrome user in Switzerland (by Dims' GeoIP database),
// referred by a news site: a click where status is a redirect, and with
// link 0 a request that named no link.
func Click(at time.Time, link int64, status uint16) logfmt.Record {
	return logfmt.Record{
		Time: at.UnixNano(), LinkID: link, Status: status,
		ClientAddr: []byte("192.0.2.10"), UserAgent: []byte(Chrome),
		Referrer: []byte("https://news.example/story"), AcceptLanguage: []byte("de-CH,de;q=0.9"),
	}
}

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
