package job

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
)

// COPY's binary format, written directly. pgx's CopyFrom takes each value
// as an interface and looks up its encoding plan per value: for a run's
// 640,000 hourly and daily rows that was most of the Go side of the write
// (profile commit-cpu-before.pprof in bench/results/profiles-23), on the
// same two cores Postgres needs to take the rows in.
const (
	// pgEpochUnix is 2000-01-01 00:00 UTC, Postgres's epoch, in Unix
	// seconds.
	pgEpochUnix = 946684800
	// pgEpochDay is the same day in days since 1970-01-01.
	pgEpochDay = 10957
)

var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyRow appends the start of a row of n fields.
func copyRow(b []byte, n int) []byte { return binary.BigEndian.AppendUint16(b, uint16(n)) }

// copyInt8 appends a bigint.
func copyInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// copyTimestamp appends a timestamptz given in Unix seconds.
func copyTimestamp(b []byte, unix int64) []byte {
	return copyInt8(b, (unix-pgEpochUnix)*1_000_000)
}

// copyDate appends a date given in days since 1970-01-01.
func copyDate(b []byte, day int32) []byte {
	b = binary.BigEndian.AppendUint32(b, 4)
	return binary.BigEndian.AppendUint32(b, uint32(day-pgEpochDay))
}

// copyBytes appends a bytea, or a json value (whose binary form is its
// text).
func copyBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// copyRows is an io.Reader of COPY's binary format for n rows, encoded
// row by row by enc as the connection reads, so a run's rows are never
// all encoded in memory at once.
type copyRows struct {
	n, next int
	enc     func(b []byte, i int) []byte
	buf     []byte
	off     int
	done    bool
}

func (r *copyRows) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.done {
			return 0, io.EOF
		}
		r.buf, r.off = r.buf[:0], 0
		if r.next == 0 {
			r.buf = append(r.buf, copyHeader...)
		}
		for ; r.next < r.n && len(r.buf) < 64<<10; r.next++ {
			r.buf = r.enc(r.buf, r.next)
		}
		if r.next == r.n {
			r.buf = binary.BigEndian.AppendUint16(r.buf, 0xffff)
			r.done = true
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// copyBinary copies n rows, each encoded by enc (copyRow, then one
// copyInt8 or the like per column), into table's columns, on the
// transaction's connection.
func copyBinary(ctx context.Context, tx pgx.Tx, table string, cols []string, n int, enc func(b []byte, i int) []byte) error {
	_, err := tx.Conn().PgConn().CopyFrom(ctx, &copyRows{n: n, enc: enc}, copySQL(table, cols))
	return err
}

// copySQL is the statement that copies COPY's binary format into table's
// cols.
func copySQL(table string, cols []string) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	return fmt.Sprintf("COPY %s (%s) FROM STDIN WITH (FORMAT binary)", pgx.Identifier{table}.Sanitize(), strings.Join(quoted, ", "))
}

// copyStream is an io.Reader of COPY's binary format for the daily rows
// that come in batches, until batches is closed: a COPY that takes rows
// while they are still being made.
type copyStream struct {
	batches <-chan []dayRow
	cur     []dayRow
	n       int // rows encoded
	buf     []byte
	off     int
	started bool
	done    bool
}

func (r *copyStream) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.done {
			return 0, io.EOF
		}
		r.buf, r.off = r.buf[:0], 0
		if !r.started {
			r.buf, r.started = append(r.buf, copyHeader...), true
		}
	fill:
		for len(r.buf) < 64<<10 {
			if len(r.cur) > 0 {
				r.buf = appendDayRow(r.buf, &r.cur[0])
				r.cur = r.cur[1:]
				r.n++
				continue
			}
			var ok bool
			if len(r.buf) > 0 {
				// What is encoded goes now rather than after a wait.
				select {
				case r.cur, ok = <-r.batches:
				default:
					break fill
				}
			} else {
				r.cur, ok = <-r.batches
			}
			if !ok {
				r.buf = binary.BigEndian.AppendUint16(r.buf, 0xffff)
				r.done = true
				break
			}
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}
