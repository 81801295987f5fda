package logfmt

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzValidSegmentName checks the names the admin API serves and the
// mapreduce job asks for: a valid one is a plain sealed file name in the
// log folder, never a path out of it, the manifest or an open segment.
func FuzzValidSegmentName(f *testing.F) {
	for _, s := range []string{"20261122T133000.000000001Z.arrows", "20261122T133000.000000001Z.arrows.open", "../x", "manifest.jsonl", "", "20261122T133000.000000001Z.arrows/../../etc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !ValidSegmentName(name) {
			return
		}
		if strings.ContainsAny(name, "/\\\x00\n") || strings.Contains(name, "..") || !strings.HasSuffix(name, SealedSuffix) {
			t.Fatalf("%q is valid", name)
		}
		if filepath.Dir(filepath.Join("/logs", name)) != "/logs" {
			t.Fatalf("%q leaves the log folder", name)
		}
	})
}
