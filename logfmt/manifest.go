package logfmt

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// ManifestName is the manifest's file name in a log folder.
const ManifestName = "manifest.jsonl"

// Segment file name suffixes.
const (
	SealedSuffix = ".arrows"
	openSuffix   = ".open"
)

// nameLayout spells a segment's start time in its name, so names sort by time.
const nameLayout = "20060102T150405.000000000Z"

var segmentNameRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{9}Z\.arrows$`)

// ValidSegmentName reports whether name is a sealed segment's file name.
// Anything a client asks for by name is checked with it first.
func ValidSegmentName(name string) bool { return segmentNameRE.MatchString(name) }

// segmentName names a segment opened at t.
func segmentName(t time.Time) string { return t.UTC().Format(nameLayout) + SealedSuffix }

// Entry is one line of a manifest: a sealed segment and how to verify it.
type Entry struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Rows    int64  `json:"rows"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
	MinTime int64  `json:"min_time_ns"`
	MaxTime int64  `json:"max_time_ns"`
}

// Validate reports what is wrong with an entry, if anything.
func (e Entry) Validate() error {
	switch {
	case !ValidSegmentName(e.Name):
		return fmt.Errorf("bad segment name %q", e.Name)
	case e.Version < 1:
		return fmt.Errorf("bad version %d", e.Version)
	case e.Rows < 0 || e.Bytes <= 0:
		return fmt.Errorf("bad size: %d rows, %d bytes", e.Rows, e.Bytes)
	case len(e.SHA256) != 64:
		return fmt.Errorf("bad sha256 %q", e.SHA256)
	case e.MinTime > e.MaxTime:
		return fmt.Errorf("min time %d after max time %d", e.MinTime, e.MaxTime)
	}
	if _, err := hex.DecodeString(e.SHA256); err != nil {
		return fmt.Errorf("bad sha256 %q", e.SHA256)
	}
	return nil
}

// ParseManifest reads manifest lines. A last line without its newline is a
// write torn by a crash and is ignored (the segment it names is re-entered
// by the writer's start-up repair); any other bad line is an error.
func ParseManifest(r io.Reader) ([]Entry, error) {
	br := bufio.NewReader(r)
	var entries []Entry
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return entries, nil // a torn last line, or none
		}
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) == 0 {
			continue
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("%w: manifest line %d: %v", ErrCorrupt, n, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%w: manifest line %d: trailing data", ErrCorrupt, n)
		}
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("%w: manifest line %d: %v", ErrCorrupt, n, err)
		}
		entries = append(entries, e)
	}
}

// ReadManifest reads the manifest of a log folder; a missing manifest is an
// empty one.
func ReadManifest(dir string) ([]Entry, error) {
	f, err := os.Open(filepath.Join(dir, ManifestName))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseManifest(f)
}

// appendManifest appends an entry and syncs it to disk.
func appendManifest(dir string, e Entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, ManifestName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open manifest: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("append to manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync manifest: %w", err)
	}
	return f.Close()
}

// writeManifest replaces the manifest atomically with entries.
func writeManifest(dir string, entries []Entry) error {
	var buf bytes.Buffer
	for _, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return writeFileAtomic(filepath.Join(dir, ManifestName), buf.Bytes())
}

// writeFileAtomic writes data to a temporary file, syncs it and renames it
// over path, then syncs the folder.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
