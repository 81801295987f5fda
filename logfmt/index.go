package logfmt

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// IngestedName is the file, in a log folder, listing the sealed segments the
// mapreduce job has acknowledged, one name a line. A segment not in it is
// pending.
const IngestedName = "ingested.txt"

// readIngested reads the acknowledged names; a missing file is none.
func readIngested(dir string) (map[string]bool, error) {
	f, err := os.Open(filepath.Join(dir, IngestedName))
	if os.IsNotExist(err) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	set := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if n := strings.TrimSpace(sc.Text()); ValidSegmentName(n) {
			set[n] = true
		}
	}
	return set, sc.Err()
}

// loadIndex builds the pending list from the manifest and the acknowledged
// names, and rewrites the acknowledgements without names whose segments are
// gone.
func (w *Writer) loadIndex() error {
	entries, err := ReadManifest(w.cfg.Dir)
	if err != nil {
		return err
	}
	acked, err := readIngested(w.cfg.Dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", IngestedName, err)
	}
	var keep strings.Builder
	for _, e := range entries {
		if acked[e.Name] {
			keep.WriteString(e.Name + "\n")
		}
	}
	w.idxMu.Lock()
	w.pending = pendingOf(entries, acked)
	w.sealedOnDisk = len(entries)
	w.idxMu.Unlock()
	return writeFileAtomic(filepath.Join(w.cfg.Dir, IngestedName), []byte(keep.String()))
}

// reindex rebuilds the pending list from the manifest after a repair
// entered segments in it behind the writer's back. It runs on the writer's
// goroutine, the manifest's only writer, and reads the acknowledgements
// under idxMu, so a concurrent MarkIngested is either wholly in them or
// not yet begun.
func (w *Writer) reindex() error {
	entries, err := ReadManifest(w.cfg.Dir)
	if err != nil {
		return err
	}
	w.idxMu.Lock()
	defer w.idxMu.Unlock()
	acked, err := readIngested(w.cfg.Dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", IngestedName, err)
	}
	w.pending = pendingOf(entries, acked)
	w.sealedOnDisk = len(entries)
	return nil
}

// pendingOf is the manifest's entries not acknowledged, in seal order.
func pendingOf(entries []Entry, acked map[string]bool) []Entry {
	var pending []Entry
	for _, e := range entries {
		if !acked[e.Name] {
			pending = append(pending, e)
		}
	}
	return pending
}

// Pending returns the sealed segments not yet acknowledged as ingested, in
// seal order.
func (w *Writer) Pending() []Entry {
	w.idxMu.Lock()
	defer w.idxMu.Unlock()
	return append([]Entry(nil), w.pending...)
}

// SegmentCounts returns how many sealed segments are on disk and how many
// of them are pending.
func (w *Writer) SegmentCounts() (onDisk, pending int) {
	w.idxMu.Lock()
	defer w.idxMu.Unlock()
	return w.sealedOnDisk, len(w.pending)
}

// MarkIngested records that the mapreduce job has ingested the named
// segments, so they are no longer listed as pending. Unknown names are
// ignored: a job may acknowledge what retention already removed.
func (w *Writer) MarkIngested(names []string) error {
	for _, n := range names {
		if !ValidSegmentName(n) {
			return fmt.Errorf("not a segment name: %q", n)
		}
	}
	w.idxMu.Lock()
	defer w.idxMu.Unlock()
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	var b strings.Builder
	kept := w.pending[:0]
	for _, e := range w.pending {
		if drop[e.Name] {
			b.WriteString(e.Name + "\n")
		} else {
			kept = append(kept, e)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(w.cfg.Dir, IngestedName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("record ingested segments: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("record ingested segments: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("record ingested segments: %w", err)
	}
	w.pending = kept
	return nil
}

// retain deletes sealed segments whose newest record is older than the
// retention period, and their manifest lines. It runs on the writer's
// goroutine, the manifest's only writer.
func (w *Writer) retain(now time.Time) {
	if w.cfg.Retention <= 0 {
		return
	}
	cutoff := now.Add(-w.cfg.Retention).UnixNano()
	entries, err := ReadManifest(w.cfg.Dir)
	if err != nil {
		w.logger.Error("retention: read manifest", "err", err)
		return
	}
	var keep []Entry
	var gone []string
	for _, e := range entries {
		if e.MaxTime < cutoff {
			gone = append(gone, e.Name)
		} else {
			keep = append(keep, e)
		}
	}
	if len(gone) == 0 {
		return
	}
	// Manifest first: a segment must never be listed without its file.
	if err := writeManifest(w.cfg.Dir, keep); err != nil {
		w.logger.Error("retention: rewrite manifest", "err", err)
		return
	}
	var errs []error
	for _, n := range gone {
		if err := os.Remove(filepath.Join(w.cfg.Dir, n)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	w.idxMu.Lock()
	goneSet := map[string]bool{}
	for _, n := range gone {
		goneSet[n] = true
	}
	kept := w.pending[:0]
	unIngested := 0
	for _, e := range w.pending {
		if goneSet[e.Name] {
			unIngested++
		} else {
			kept = append(kept, e)
		}
	}
	w.pending = kept
	w.sealedOnDisk = len(keep)
	w.idxMu.Unlock()
	w.retained.Add(uint64(len(gone)))
	w.logger.Info("retention deleted old segments", "deleted", len(gone), "never_ingested", unIngested,
		"retention", w.cfg.Retention, "err", errors.Join(errs...))
}
