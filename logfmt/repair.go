package logfmt

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// Repair brings a log folder to a consistent state after a crash or a write
// error, and returns how many records it saved from torn segments:
//
//   - an open segment is cut after its last whole batch, given an
//     end-of-stream marker, synced, sealed and entered in the manifest; one
//     without a whole batch is removed (it held no records);
//   - a manifest whose last line was torn is rewritten without it;
//   - a sealed segment missing from the manifest (a crash between rename and
//     append) is checked and entered;
//   - a sealed segment that cannot be read is renamed *.corrupt and logged.
//
// Repair never changes a sealed segment that is in the manifest.
func Repair(dir string, logger *slog.Logger) (int64, error) {
	return repair(dir, logger, "")
}

// repair is Repair leaving alone the open segment named skip, which a
// running writer is still writing.
func repair(dir string, logger *slog.Logger, skip string) (recovered int64, err error) {
	os.Remove(filepath.Join(dir, ManifestName+".tmp"))
	if stale, err := filepath.Glob(filepath.Join(dir, "*"+SealedSuffix+".tmp")); err == nil {
		for _, f := range stale {
			os.Remove(f) // a seal that did not finish; its open file is still there
		}
	}
	entries, err := ReadManifest(dir)
	if err != nil {
		logger.Error("manifest unreadable; rebuilding it from the sealed segments", "dir", dir, "err", err)
		entries = nil
		if err := writeManifest(dir, nil); err != nil {
			return 0, fmt.Errorf("reset manifest: %w", err)
		}
	} else if torn, err := manifestTorn(dir); err != nil {
		return 0, err
	} else if torn {
		if err := writeManifest(dir, entries); err != nil {
			return 0, fmt.Errorf("rewrite torn manifest: %w", err)
		}
	}
	known := make(map[string]bool, len(entries))
	for _, e := range entries {
		known[e.Name] = true
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list log folder: %w", err)
	}
	var opens, unlisted []string
	for _, d := range names {
		n := d.Name()
		switch {
		case n == skip:
		case strings.HasSuffix(n, openSuffix) && ValidSegmentName(strings.TrimSuffix(n, openSuffix)):
			opens = append(opens, n)
		case ValidSegmentName(n) && !known[n]:
			unlisted = append(unlisted, n)
		}
	}
	sort.Strings(opens)
	sort.Strings(unlisted)
	var errs []error
	for _, n := range unlisted {
		if err := enter(dir, n, logger); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range opens {
		rows, err := recoverOpen(dir, n, logger)
		recovered += rows
		if err != nil {
			errs = append(errs, err)
		}
	}
	return recovered, errors.Join(errs...)
}

// manifestTorn reports whether the manifest's last byte is not a newline.
func manifestTorn(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, ManifestName))
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return false, err
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], st.Size()-1); err != nil {
		return false, err
	}
	return last[0] != '\n', nil
}

// enter checks a sealed segment that the manifest lacks and appends it.
func enter(dir, name string, logger *slog.Logger) error {
	path := filepath.Join(dir, name)
	e, err := describe(path)
	if err != nil {
		logger.Error("sealed segment unreadable; set aside", "segment", name, "err", err)
		return os.Rename(path, path+".corrupt")
	}
	if err := appendManifest(dir, e); err != nil {
		return fmt.Errorf("enter segment %s: %w", name, err)
	}
	logger.Warn("sealed segment entered in the manifest", "segment", name, "rows", e.Rows)
	return nil
}

// describe reads a whole segment and returns its manifest entry.
func describe(path string) (Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return Entry{}, err
	}
	defer f.Close()
	sum := sha256.New()
	cr := &countReader{r: io.TeeReader(f, sum)}
	rd, err := NewReader(cr)
	if err != nil {
		return Entry{}, err
	}
	defer rd.Release()
	e := Entry{Name: filepath.Base(path), Version: rd.Version()}
	for rd.Next() {
		for _, t := range rd.Batch().Time.Values() {
			if e.Rows == 0 || int64(t) < e.MinTime {
				e.MinTime = int64(t)
			}
			if e.Rows == 0 || int64(t) > e.MaxTime {
				e.MaxTime = int64(t)
			}
			e.Rows++
		}
	}
	if err := rd.Err(); err != nil {
		return Entry{}, err
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return Entry{}, err
	}
	e.Bytes = cr.n
	e.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return e, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// recoverOpen seals what is whole of an open segment.
func recoverOpen(dir, openName string, logger *slog.Logger) (int64, error) {
	path := filepath.Join(dir, openName)
	name := strings.TrimSuffix(openName, openSuffix)
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		// Sealed already: the crash came between the rename and removing
		// the open file. The sealed file has it all.
		logger.Info("open segment was sealed already; removed", "segment", openName)
		return 0, os.Remove(path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open torn segment %s: %w", openName, err)
	}
	size := fileSizeOr0(f)
	good, batches := wholePrefix(f)
	if batches == 0 {
		f.Close()
		logger.Info("open segment held no whole batch; removed", "segment", openName)
		return 0, os.Remove(path)
	}
	err = f.Truncate(good)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("cut torn segment %s: %w", openName, err)
	}
	e, err := sealFile(dir, path, name, readAlloc)
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnknownVersion) {
		logger.Error("torn segment unreadable after cut; set aside", "segment", openName, "err", err)
		return 0, os.Rename(path, path+".corrupt")
	}
	if err != nil {
		// A full disk, say: the open file stays, to be sealed next time.
		return 0, fmt.Errorf("seal recovered segment %s: %w", openName, err)
	}
	if err := appendManifest(dir, e); err != nil {
		return e.Rows, fmt.Errorf("enter recovered segment %s: %w", name, err)
	}
	os.Remove(path)
	logger.Warn("torn segment recovered and sealed", "segment", name, "rows", e.Rows, "cut_bytes", size-good)
	return e.Rows, nil
}

func fileSizeOr0(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// wholePrefix returns the length of the longest prefix of r made of whole
// IPC messages (stopping at an end-of-stream marker), and how many record
// batches it holds.
func wholePrefix(r io.Reader) (good int64, batches int) {
	defer func() {
		// Message metadata is only decoded lazily; garbage panics there.
		if p := recover(); p != nil {
			return
		}
	}()
	cr := &countReader{r: r}
	mr := ipc.NewMessageReader(cr, ipc.WithAllocator(readAlloc),
		ipc.WithBodySizeLimit(maxBody), ipc.WithMetadataSizeLimit(maxMetadata))
	defer mr.Release()
	for {
		msg, err := mr.Message()
		if err != nil {
			return good, batches
		}
		switch msg.Type() {
		case ipc.MessageRecordBatch:
			batches++
		case ipc.MessageSchema:
			if good != 0 {
				return good, batches
			}
		default:
			return good, batches
		}
		good = cr.n
	}
}
