package job

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"shortfleet/logfmt"
	"shortfleet/mapreduce/internal/aggregate"
)

// ArchivePath is where the records of one segment for one day are
// archived: <dir>/day=YYYY-MM-DD/<proxy>-<segment>.parquet. The day=
// folders are Hive-style partitions, which DuckDB, Spark and Trino read as
// a column; the name is fixed by the segment, so archiving again (after a
// run died before committing) replaces the file rather than adding one.
func ArchivePath(dir, proxy, segment string, day time.Time) string {
	return filepath.Join(dir, "day="+day.Format("2006-01-02"),
		proxy+"-"+strings.TrimSuffix(segment, logfmt.SealedSuffix)+".parquet")
}

// WriteArchive writes every record of a segment to the archive as Parquet
// (zstd), one file per day its records fall in.
func WriteArchive(dir, proxy, segment string, data []byte) error {
	rd, err := logfmt.NewBytesReader(data)
	if err != nil {
		return err
	}
	defer rd.Release()
	type out struct {
		tmp, path string
		f         *os.File
		w         *pqarrow.FileWriter
	}
	files := map[int64]*out{}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(true), parquet.WithCreatedBy("shortfleet mapreduce"))
	abort := func() {
		for _, o := range files {
			o.f.Close()
			os.Remove(o.tmp)
		}
	}
	writer := func(day int64, schema *arrow.Schema) (*pqarrow.FileWriter, error) {
		if o := files[day]; o != nil {
			return o.w, nil
		}
		path := ArchivePath(dir, proxy, segment, time.Unix(day*86400, 0).UTC())
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		tmp := path + ".tmp"
		f, err := os.Create(tmp)
		if err != nil {
			return nil, err
		}
		w, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, err
		}
		files[day] = &out{tmp: tmp, path: path, f: f, w: w}
		return w, nil
	}
	for rd.Next() {
		b := rd.Batch()
		// Archives hold version 1's plain strings, whatever the segment's
		// version: one schema for every file of a day.
		rec, err := b.Plain()
		if err != nil {
			abort()
			return err
		}
		times := b.Time.Values()
		// Records are in arrival order, so a batch is one day, or two
		// around midnight: write each run of one day as a slice.
		for start := 0; start < len(times); {
			day := int64(aggregate.DayOf(int64(times[start])))
			end := start + 1
			for end < len(times) && int64(aggregate.DayOf(int64(times[end]))) == day {
				end++
			}
			w, err := writer(day, rec.Schema())
			if err != nil {
				rec.Release()
				abort()
				return err
			}
			slice := rec.NewSlice(int64(start), int64(end))
			err = w.WriteBuffered(slice)
			slice.Release()
			if err != nil {
				rec.Release()
				abort()
				return fmt.Errorf("write parquet: %w", err)
			}
			start = end
		}
		rec.Release()
	}
	if err := rd.Err(); err != nil {
		abort()
		return err
	}
	for _, o := range files {
		if err := o.w.Close(); err != nil { // closes the file too
			abort()
			return fmt.Errorf("finish parquet: %w", err)
		}
		if err := os.Rename(o.tmp, o.path); err != nil {
			return err
		}
	}
	return nil
}
