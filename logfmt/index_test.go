package logfmt

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestPendingAndIngested(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "p"}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Append(testRecord(i))
		w.Rotate()
	}
	p := w.Pending()
	if len(p) != 3 {
		t.Fatalf("%d pending after 3 rotations, want 3", len(p))
	}
	if err := w.MarkIngested([]string{p[0].Name, p[2].Name, "20000101T000000.000000000Z.arrows"}); err != nil {
		t.Fatal(err)
	}
	if err := w.MarkIngested([]string{"../etc/passwd"}); err == nil {
		t.Fatal("MarkIngested accepted a bad name")
	}
	if got := w.Pending(); len(got) != 1 || got[0].Name != p[1].Name {
		t.Fatalf("pending %v, want only %s", got, p[1].Name)
	}
	w.Close()
	// The acknowledgements survive a restart.
	w2, err := NewWriter(WriterConfig{Dir: dir, Proxy: "p"}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if got := w2.Pending(); len(got) != 1 || got[0].Name != p[1].Name {
		t.Fatalf("after restart pending %v, want only %s", got, p[1].Name)
	}
	if onDisk, pending := w2.SegmentCounts(); onDisk != 3 || pending != 1 {
		t.Fatalf("counts %d on disk, %d pending", onDisk, pending)
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	w, _ := NewWriter(WriterConfig{Dir: dir, Proxy: "p"}, quietLogger())
	old := testRecord(1)
	old.Time = time.Now().Add(-400 * 24 * time.Hour).UnixNano()
	w.Append(old)
	w.Rotate()
	fresh := testRecord(2)
	fresh.Time = time.Now().UnixNano()
	w.Append(fresh)
	w.Close()
	before, _ := ReadManifest(dir)
	if len(before) != 2 {
		t.Fatalf("%d segments, want 2", len(before))
	}
	w, _ = NewWriter(WriterConfig{Dir: dir, Proxy: "p", Retention: 365 * 24 * time.Hour}, quietLogger())
	w.Close() // retention runs at start-up
	after, rows := readFolder(t, dir)
	if len(after) != 1 || after[0].Name != before[1].Name || len(rows) != 1 {
		t.Fatalf("after retention: %v", after)
	}
	if _, err := os.Stat(filepath.Join(dir, before[0].Name)); !os.IsNotExist(err) {
		t.Fatalf("old segment still on disk: %v", err)
	}
	if w.Stats().Retained != 1 {
		t.Fatalf("retained %d, want 1", w.Stats().Retained)
	}
}

// TestDiskFull writes to a 256 KiB tmpfs until it is full, then grows it:
// records that could not be written are counted, not lost silently, and
// writing resumes. Mounting needs root, which make test and CI run as.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root; make test runs as root in CI")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	var logged lineCounter
	start := time.Now()
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "p", FlushRows: 100, FlushInterval: 5 * time.Millisecond, SealBytes: 32 << 10},
		slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		t.Fatal(err)
	}
	big := testRecord(1)
	big.UserAgent = make([]byte, 2000)
	for i := range big.UserAgent {
		big.UserAgent[i] = byte('a' + (i*7919)%26) // poorly compressible
	}
	for i := 0; w.Stats().Dropped == 0; i++ {
		if i > 200_000 {
			t.Fatal("a 256 KiB filesystem never filled")
		}
		w.Append(big)
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	full := w.Stats()
	if full.WriteErrors == 0 {
		t.Fatalf("drops without write errors: %+v", full)
	}
	if out, err := exec.Command("mount", "-o", "remount,size=16m", dir).CombinedOutput(); err != nil {
		t.Fatalf("grow tmpfs: %v: %s", err, out)
	}
	for range 500 {
		w.Append(testRecord(2))
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close reported no dropped records")
	}
	st := w.Stats()
	if st.Written+st.Dropped != st.Appended {
		t.Fatalf("written %d + dropped %d != appended %d (recovered %d)", st.Written, st.Dropped, st.Appended, st.Recovered)
	}
	entries, rows := readFolder(t, dir)
	// Segments the repair recovered after the write errors are pending in
	// this writer, as those it sealed itself are.
	if got, want := names(w.Pending()), names(entries); !reflect.DeepEqual(got, want) {
		t.Fatalf("pending %v, want every sealed segment %v (recovered %d records)", got, want, st.Recovered)
	}
	var late int
	for _, r := range rows {
		if r.Path == string(testRecord(2).Path) {
			late++
		}
	}
	if late != 500 {
		t.Fatalf("%d of 500 records appended after space returned were sealed", late)
	}
	if uint64(len(rows)) != st.Written {
		t.Fatalf("%d rows readable, %d written: a written record was lost", len(rows), st.Written)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.open")); len(left) != 0 {
		t.Fatalf("open segments left: %v", left)
	}
	// Errors are logged once a second at most, however many writes fail.
	if secs := time.Since(start).Seconds(); float64(logged.n.Load()) > secs+2 {
		t.Fatalf("%d error lines in %.1fs: more than one a second", logged.n.Load(), secs)
	}
	if logged.n.Load() == 0 {
		t.Fatal("the drops were never logged")
	}
}

type lineCounter struct{ n atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(bytes.Count(p, []byte("\n"))))
	return len(p), nil
}

// TestSealedOpenLeftover: a crash after the sealed file was renamed into
// place but before the open file was removed must not count its records
// twice.
func TestSealedOpenLeftover(t *testing.T) {
	_, open, _ := crashedFolder(t, 2)
	dir := filepath.Dir(open)
	if _, err := Repair(dir, quietLogger()); err != nil { // seals it
		t.Fatal(err)
	}
	entries, _ := ReadManifest(dir)
	if len(entries) != 1 || entries[0].Rows != 20 {
		t.Fatalf("after repair: %+v", entries)
	}
	data, _ := os.ReadFile(filepath.Join(dir, entries[0].Name))
	// Put the open file back, as if the crash came before its removal, and
	// drop the manifest line, as if it came before that too.
	os.WriteFile(open, data, 0o644)
	os.WriteFile(filepath.Join(dir, ManifestName), nil, 0o644)
	if _, err := Repair(dir, quietLogger()); err != nil {
		t.Fatal(err)
	}
	_, rows := readFolder(t, dir)
	if len(rows) != 20 {
		t.Fatalf("%d records after a second repair, want 20", len(rows))
	}
	if _, err := os.Stat(open); !os.IsNotExist(err) {
		t.Fatal("the leftover open file is still there")
	}
}

// TestRepairedSegmentPendingAtOnce: a segment whose seal failed is entered
// in the manifest by the running writer's repair once the disk lets it, and
// is listed as pending by the same writer at once, not only after a
// restart: the mapreduce job lists segments with Pending.
func TestRepairedSegmentPendingAtOnce(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "p", FlushInterval: time.Millisecond}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Two sealed segments, the first acknowledged: the rebuilt list must
	// keep the acknowledgement.
	for i := range 2 {
		w.Append(testRecord(i))
		w.Rotate()
	}
	before := w.Pending()
	if len(before) != 2 {
		t.Fatalf("%d pending, want 2", len(before))
	}
	if err := w.MarkIngested([]string{before[0].Name}); err != nil {
		t.Fatal(err)
	}
	// A folder where the manifest was makes appending to it fail (as root
	// too, unlike a permission), so the next seal fails after its sealed
	// file is complete. Folder and manifest trade places in one atomic
	// exchange, both ways: a repair running between two renames would find
	// no manifest at all and enter every sealed file in a new one, which the
	// second rename would then partly overwrite (a flake seen under load).
	manifest := filepath.Join(dir, ManifestName)
	if err := os.Mkdir(manifest+".aside", 0o755); err != nil {
		t.Fatal(err)
	}
	exchange := func() {
		t.Helper()
		if err := unix.Renameat2(unix.AT_FDCWD, manifest, unix.AT_FDCWD, manifest+".aside", unix.RENAME_EXCHANGE); err != nil {
			t.Fatal(err)
		}
	}
	exchange()
	w.Append(testRecord(2))
	w.Rotate()
	if w.Stats().WriteErrors == 0 {
		t.Fatal("sealing into a folder without a writable manifest did not fail")
	}
	if got := w.Pending(); len(got) != 1 || got[0].Name != before[1].Name {
		t.Fatalf("pending %v after the failed seal, want only %s", names(got), before[1].Name)
	}
	// The disk recovers; the writer's repair, every flush interval, enters
	// the sealed segment.
	exchange()
	var entries []Entry
	for len(entries) < 3 {
		time.Sleep(time.Millisecond)
		if entries, err = ReadManifest(dir); err != nil {
			t.Fatal(err)
		}
	}
	// Rotate is served by the goroutine that ran the repair, so once it
	// returns that repair has finished.
	w.Rotate()
	want := []string{entries[1].Name, entries[2].Name}
	if got := names(w.Pending()); !reflect.DeepEqual(got, want) {
		t.Fatalf("pending %v after the repair, want %v", got, want)
	}
	if onDisk, pending := w.SegmentCounts(); onDisk != 3 || pending != 2 {
		t.Fatalf("counts %d on disk, %d pending; want 3, 2", onDisk, pending)
	}
}

func names(entries []Entry) []string {
	var n []string
	for _, e := range entries {
		n = append(n, e.Name)
	}
	return n
}

// TestDocFolderDiagram: every kind of file a writer keeps in its log
// folder is in doc.go's diagram of the folder, so the documentation of the
// format does not leave out what an operator finds there.
func TestDocFolderDiagram(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, diagram, _ := strings.Cut(string(src), "//\tlogs/\n")
	diagram, _, _ = strings.Cut(diagram, "//\n")
	var listed []string
	for _, l := range strings.Split(diagram, "\n") {
		if f := strings.Fields(strings.TrimLeft(l, "/\t│├└─ ")); len(f) > 0 {
			listed = append(listed, f[0])
		}
	}
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "p", FlushRows: 1}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Append(testRecord(0))
	w.Rotate()
	if err := w.MarkIngested([]string{w.Pending()[0].Name}); err != nil {
		t.Fatal(err)
	}
	w.Append(testRecord(1)) // cut at once: the writer opens a segment for it
	for {
		if open, _ := filepath.Glob(filepath.Join(dir, "*"+openSuffix)); len(open) > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		kind := f.Name()
		switch {
		case ValidSegmentName(kind):
			kind = "a sealed segment"
		case strings.HasSuffix(kind, openSuffix) && ValidSegmentName(strings.TrimSuffix(kind, openSuffix)):
			kind = "an open segment"
		}
		found := slices.ContainsFunc(listed, func(l string) bool {
			switch kind {
			case "a sealed segment":
				return ValidSegmentName(l)
			case "an open segment":
				return strings.HasSuffix(l, openSuffix) && ValidSegmentName(strings.TrimSuffix(l, openSuffix))
			}
			return l == kind
		})
		if !found {
			t.Errorf("the log folder holds %s (%s), which doc.go's diagram %v leaves out", kind, f.Name(), listed)
		}
	}
}
