package job

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// archivedRow is how parquet-go, an implementation independent of the
// arrow-go writer, sees the archive's columns.
type archivedRow struct {
	Time      time.Time `parquet:"time"`
	LinkID    int64     `parquet:"link_id"`
	Status    uint16    `parquet:"status"`
	Path      string    `parquet:"path"`
	UserAgent string    `parquet:"user_agent"`
	Proxy     string    `parquet:"proxy"`
}

// TestArchive runs with the cold archive on, over a segment that spans
// midnight, and reads the Parquet files back with parquet-go.
func TestArchive(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a := newProxyLogs(t, "proxy-a")
	midnight := t0.Truncate(24 * time.Hour).Add(24 * time.Hour)
	recs := clicks(10, 7, midnight.Add(-4*time.Second), true) // 4 before midnight, 6 after, and a 404
	for i := range recs {
		recs[i].Path = []byte("/abc")
	}
	a.write(nil, recs...)
	seg := a.W.Pending()[0].Name
	dir := t.TempDir()
	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL}, Archive: dir})
	if _, err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "day=*", "*.parquet"))
	sort.Strings(files)
	if len(files) != 2 {
		t.Fatalf("archive files %v, want one for each of two days", files)
	}
	counts := map[string]int{}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := parquet.Read[archivedRow](f, fileSize(t, f))
		f.Close()
		if err != nil {
			t.Fatalf("parquet-go cannot read %s: %v", path, err)
		}
		day := filepath.Base(filepath.Dir(path))
		for _, r := range rows {
			if "day="+r.Time.UTC().Format("2006-01-02") != day {
				t.Fatalf("%s holds a record of %s", path, r.Time)
			}
			if r.Proxy != "proxy-a" || r.Path != "/abc" || (r.LinkID != 7 && r.LinkID != 0) {
				t.Fatalf("record %+v", r)
			}
		}
		counts[day] = len(rows)
	}
	d1, d2 := "day="+t0.Format("2006-01-02"), "day="+midnight.Format("2006-01-02")
	if counts[d1] != 5 || counts[d2] != 6 { // the 404 carries the first record's time
		t.Fatalf("rows per day %v, want %s:5 %s:6", counts, d1, d2)
	}
	if want := ArchivePath(dir, "proxy-a", seg, midnight); files[1] != want {
		t.Fatalf("file %s, want %s", files[1], want)
	}
}

func fileSize(t *testing.T, f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
