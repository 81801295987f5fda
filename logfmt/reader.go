package logfmt

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// maxAlloc bounds any one allocation while decoding. A corrupt segment can
// claim any buffer size; this turns an absurd claim into an error instead of
// an out-of-memory crash. Real buffers are a few MiB.
const maxAlloc = 128 << 20

// limitedAllocator recycles buffers (see poolAllocator) and refuses any
// one allocation over maxAlloc.
type limitedAllocator struct{ *poolAllocator }

func (a limitedAllocator) Allocate(size int) []byte {
	if size < 0 || size > maxAlloc {
		panic(fmt.Sprintf("allocation of %d bytes refused: corrupt size", size))
	}
	return a.poolAllocator.Allocate(size)
}

func (a limitedAllocator) Reallocate(size int, b []byte) []byte {
	if size < 0 || size > maxAlloc {
		panic(fmt.Sprintf("allocation of %d bytes refused: corrupt size", size))
	}
	return a.poolAllocator.Reallocate(size, b)
}

// readAlloc serves every reader: a batch's buffers return to it when the
// reader moves on, and the next batch reuses them.
var readAlloc memory.Allocator = limitedAllocator{&poolAllocator{noZero: true}}

// Reader reads the record batches of one segment. Every batch is validated
// in full before it is handed out, so a damaged segment gives an error,
// never a panic or a wrong value.
type Reader struct {
	r       *ipc.Reader
	proxy   string
	version int
	batch   Batch
	err     error
}

// NewReader reads a segment's schema from r and checks that this build can
// read its format version.
func NewReader(r io.Reader) (*Reader, error) {
	prefix, err := readSchemaPrefix(r)
	if err != nil {
		return nil, err
	}
	return newReader(newInflater(io.MultiReader(bytes.NewReader(prefix), r), nil))
}

// NewBytesReader is NewReader over a whole segment in memory, read in
// place: its compressed buffers are not copied. data must not change until
// the Reader is released.
func NewBytesReader(data []byte) (*Reader, error) {
	if _, err := readSchemaPrefix(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	return newReader(newInflater(nil, data))
}

// NewColumnsReader is NewBytesReader reading only the columns listed (Col
// constants): the others' record batch buffers are not even decompressed,
// and they read as zero values (empty strings, zeros, no headers). Damage
// within those buffers goes unseen, so data should have been checked
// against its manifest entry first. (Dictionary batches, small, are read
// whole.) The mapreduce job's map reads 7 of the 18 columns this way.
func NewColumnsReader(data []byte, cols ...int) (*Reader, error) {
	if _, err := readSchemaPrefix(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	mr := newInflater(nil, data)
	rd, err := newReader(mr)
	if err != nil {
		return nil, err
	}
	if roles, ok := bufferRoles(rd.r.Schema(), cols); ok {
		mr.roles = roles
		for _, c := range DictColumns {
			rd.batch.skip[c] = !slices.Contains(cols, c)
		}
	}
	return rd, nil
}

func newReader(mr *inflater) (rd *Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	ir, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(readAlloc))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	version, proxy, err := checkSchema(ir.Schema())
	if err != nil {
		ir.Release()
		return nil, err
	}
	return &Reader{r: ir, proxy: proxy, version: version}, nil
}

// Proxy is the id of the proxy that wrote the segment.
func (r *Reader) Proxy() string { return r.proxy }

// Version is the segment's format version.
func (r *Reader) Version() int { return r.version }

// Next advances to the next batch; it returns false at the end or on error.
func (r *Reader) Next() (ok bool) {
	if r.err != nil {
		return false
	}
	defer func() {
		if p := recover(); p != nil {
			r.err = fmt.Errorf("%w: %v", ErrCorrupt, p)
			ok = false
		}
	}()
	if !r.r.Next() {
		if err := r.r.Err(); err != nil {
			r.err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return false
	}
	rec := r.r.RecordBatch()
	if err := validate(rec); err != nil {
		r.err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		return false
	}
	if err := r.batch.set(rec); err != nil {
		r.err = err
		return false
	}
	return true
}

// Batch is the current batch, valid until the next call to Next.
func (r *Reader) Batch() *Batch { return &r.batch }

// Err is the error that stopped Next, if any.
func (r *Reader) Err() error { return r.err }

// Release frees the reader's memory.
func (r *Reader) Release() { r.r.Release() }

// Batch gives typed access to one record batch's columns.
type Batch struct {
	Rec            arrow.RecordBatch
	Time           *array.Timestamp
	Proxy          *array.String
	ClientAddr     *array.String
	ClientPort     *array.Uint16
	Method         *array.String
	Host           *array.String
	Path           *array.String
	Query          *array.String
	Proto          *array.String
	Status         *array.Uint16
	LinkID         *array.Int64
	Latency        *array.Int64
	Cache          *array.String
	ReplicaLag     *array.Int64
	UserAgent      Strings
	Referrer       Strings
	AcceptLanguage Strings
	Headers        *array.List
	headerNames    *array.String
	headerValues   *array.String
	// Rule is nil in segments before version 3, which read as 0.
	Rule *array.Uint8

	// skip marks the DictColumns a projected read leaves out: their
	// indices are zeros, and they read as empty strings.
	skip [numCols]bool
}

func (b *Batch) set(rec arrow.RecordBatch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: column types: %v", ErrCorrupt, p)
		}
	}()
	b.Rec = rec
	b.Time = rec.Column(ColTime).(*array.Timestamp)
	b.Proxy = rec.Column(ColProxy).(*array.String)
	b.ClientAddr = rec.Column(ColClientAddr).(*array.String)
	b.ClientPort = rec.Column(ColClientPort).(*array.Uint16)
	b.Method = rec.Column(ColMethod).(*array.String)
	b.Host = rec.Column(ColHost).(*array.String)
	b.Path = rec.Column(ColPath).(*array.String)
	b.Query = rec.Column(ColQuery).(*array.String)
	b.Proto = rec.Column(ColProto).(*array.String)
	b.Status = rec.Column(ColStatus).(*array.Uint16)
	b.LinkID = rec.Column(ColLinkID).(*array.Int64)
	b.Latency = rec.Column(ColLatency).(*array.Int64)
	b.Cache = rec.Column(ColCache).(*array.String)
	b.ReplicaLag = rec.Column(ColReplicaLag).(*array.Int64)
	b.UserAgent.set(rec.Column(ColUserAgent), b.skip[ColUserAgent])
	b.Referrer.set(rec.Column(ColReferrer), b.skip[ColReferrer])
	b.AcceptLanguage.set(rec.Column(ColAcceptLanguage), b.skip[ColAcceptLanguage])
	b.Headers = rec.Column(ColHeaders).(*array.List)
	st := b.Headers.ListValues().(*array.Struct)
	b.headerNames = st.Field(0).(*array.String)
	b.headerValues = st.Field(1).(*array.String)
	b.Rule = nil
	if rec.NumCols() > ColRule {
		b.Rule = rec.Column(ColRule).(*array.Uint8)
	}
	return nil
}

// RuleOf is row i's Rule, 0 in segments before version 3.
func (b *Batch) RuleOf(i int) uint8 {
	if b.Rule == nil {
		return 0
	}
	return b.Rule.Value(i)
}

// Strings is a string column, plain (format version 1) or
// dictionary-encoded (version 2's DictColumns).
type Strings struct {
	plain   *array.String
	dict    *array.String
	indices []int32
}

// set points s at column a; a skipped dictionary column reads as empty
// strings.
func (s *Strings) set(a arrow.Array, skipped bool) {
	switch a := a.(type) {
	case *array.String:
		*s = Strings{plain: a}
	case *array.Dictionary:
		if skipped {
			*s = Strings{}
			return
		}
		*s = Strings{dict: a.Dictionary().(*array.String), indices: a.Indices().(*array.Int32).Int32Values()}
	default:
		panic(fmt.Sprintf("%s column where strings belong", a.DataType()))
	}
}

// Value is row i's string.
func (s *Strings) Value(i int) string {
	switch {
	case s.plain != nil:
		return s.plain.Value(i)
	case s.dict != nil:
		return s.dict.Value(int(s.indices[i]))
	}
	return ""
}

// Dictionary returns a dictionary-encoded column's distinct values and
// each row's index into them; ok is false for a plain column or one a
// projected read left out.
func (s *Strings) Dictionary() (values *array.String, indices []int32, ok bool) {
	return s.dict, s.indices, s.dict != nil
}

// Plain returns the batch with its open version's columns (1 for a
// version 2 batch, 3 for 4): dictionary-encoded strings spelled out. Release it after use. A few bytes of dictionary can
// stand for many of strings: a column that would spell out to more than
// maxAlloc bytes is ErrCorrupt.
func (b *Batch) Plain() (arrow.RecordBatch, error) {
	if _, ok := b.Rec.Column(ColUserAgent).(*array.String); ok {
		b.Rec.Retain()
		return b.Rec, nil
	}
	for _, c := range DictColumns {
		s, n := b.strings(c), int64(0)
		for i := range b.Len() {
			if n += int64(len(s.Value(i))); n > maxAlloc {
				return nil, fmt.Errorf("%w: column %d spells out to over %d bytes", ErrCorrupt, c, maxAlloc)
			}
		}
	}
	proxy, _ := b.Rec.Schema().Metadata().GetValue(MetaProxy)
	cols := slices.Clone(b.Rec.Columns())
	var owned []arrow.Array
	for _, c := range DictColumns {
		s := b.strings(c)
		var plain strCol
		plain.reset()
		for i := range b.Len() {
			plain.appendString(s.Value(i))
		}
		d := plain.arrayData()
		cols[c] = array.MakeFromData(d)
		d.Release()
		owned = append(owned, cols[c])
	}
	plain := 1
	if b.Rec.NumCols() > ColRule {
		plain = 3
	}
	rec := array.NewRecordBatch(schemaOf(plain, proxy), cols, b.Rec.NumRows())
	for _, a := range owned {
		a.Release()
	}
	return rec, nil
}

// strings is DictColumns column c.
func (b *Batch) strings(c int) *Strings {
	switch c {
	case ColUserAgent:
		return &b.UserAgent
	case ColReferrer:
		return &b.Referrer
	}
	return &b.AcceptLanguage
}

// Len is the number of rows in the batch.
func (b *Batch) Len() int { return int(b.Rec.NumRows()) }

// HeaderCount is the number of headers of row i.
func (b *Batch) HeaderCount(i int) int {
	s, e := b.Headers.ValueOffsets(i)
	return int(e - s)
}

// Header returns the j-th header of row i.
func (b *Batch) Header(i, j int) (name, value string) {
	s, _ := b.Headers.ValueOffsets(i)
	k := int(s) + j
	return b.headerNames.Value(k), b.headerValues.Value(k)
}

// Row is one decoded record, with strings copied out of the batch.
type Row struct {
	Time           int64
	Proxy          string
	ClientAddr     string
	ClientPort     uint16
	Method         string
	Host           string
	Path           string
	Query          string
	Proto          string
	Status         uint16
	LinkID         int64
	LatencyNS      int64
	Cache          string
	ReplicaLagNS   int64
	UserAgent      string
	Referrer       string
	AcceptLanguage string
	Headers        [][2]string
	Rule           uint8
}

// Row copies row i out of the batch.
func (b *Batch) Row(i int) Row {
	r := Row{
		Time:           int64(b.Time.Value(i)),
		Proxy:          clone(b.Proxy.Value(i)),
		ClientAddr:     clone(b.ClientAddr.Value(i)),
		ClientPort:     b.ClientPort.Value(i),
		Method:         clone(b.Method.Value(i)),
		Host:           clone(b.Host.Value(i)),
		Path:           clone(b.Path.Value(i)),
		Query:          clone(b.Query.Value(i)),
		Proto:          clone(b.Proto.Value(i)),
		Status:         b.Status.Value(i),
		LinkID:         b.LinkID.Value(i),
		LatencyNS:      b.Latency.Value(i),
		Cache:          clone(b.Cache.Value(i)),
		ReplicaLagNS:   b.ReplicaLag.Value(i),
		UserAgent:      clone(b.UserAgent.Value(i)),
		Referrer:       clone(b.Referrer.Value(i)),
		AcceptLanguage: clone(b.AcceptLanguage.Value(i)),
		Rule:           b.RuleOf(i),
	}
	for j := range b.HeaderCount(i) {
		n, v := b.Header(i, j)
		r.Headers = append(r.Headers, [2]string{clone(n), clone(v)})
	}
	return r
}

// clone copies s: Arrow strings point into the batch's buffers.
func clone(s string) string { return strings.Clone(s) }

// ReadAll reads every row of a segment. It is for tests and tools; the
// mapreduce job reads columns batch by batch.
func ReadAll(r io.Reader) ([]Row, error) {
	rd, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	return rd.readAll()
}

// readAll reads the rest of the segment's rows and releases the reader.
func (rd *Reader) readAll() ([]Row, error) {
	defer rd.Release()
	var rows []Row
	for rd.Next() {
		b := rd.Batch()
		for i := range b.Len() {
			rows = append(rows, b.Row(i))
		}
	}
	return rows, rd.Err()
}

// validate checks a batch's structure (buffer sizes, child lengths) and
// that every string and list offset stays in bounds and never decreases,
// so no access can go out of range. It does not check that strings are
// UTF-8: Go strings hold any bytes, and ours are written valid.
func validate(rec arrow.RecordBatch) error {
	if err := array.ValidateRecord(rec); err != nil {
		return err
	}
	for i, col := range rec.Columns() {
		if err := validateOffsets(col); err != nil {
			return fmt.Errorf("column %d (%s): %w", i, rec.Schema().Field(i).Name, err)
		}
	}
	return nil
}

func monotonic(offsets []int32, limit int) error {
	prev := int32(0)
	for i, o := range offsets {
		if o < prev || (i == 0 && o < 0) || int(o) > limit {
			return fmt.Errorf("offset %d is %d, after %d, limit %d", i, o, prev, limit)
		}
		prev = o
	}
	return nil
}

func validateOffsets(a arrow.Array) error {
	switch a := a.(type) {
	case *array.String:
		data := 0
		if b := a.Data().Buffers()[2]; b != nil {
			data = b.Len()
		}
		return monotonic(a.ValueOffsets(), data)
	case *array.List:
		d := a.Data()
		off := a.Offsets()
		if len(off) < d.Offset()+d.Len()+1 {
			return fmt.Errorf("%d list offsets for %d rows", len(off), d.Offset()+d.Len())
		}
		if err := monotonic(off[d.Offset():d.Offset()+d.Len()+1], a.ListValues().Len()); err != nil {
			return err
		}
		return validateOffsets(a.ListValues())
	case *array.Dictionary:
		dict, ok := a.Dictionary().(*array.String)
		if !ok {
			return fmt.Errorf("dictionary of %s", a.Dictionary().DataType())
		}
		// Nothing writes nulls, and a null index would read as a value.
		if a.NullN() != 0 || dict.NullN() != 0 {
			return fmt.Errorf("nulls in a dictionary column")
		}
		if err := array.Validate(dict); err != nil {
			return fmt.Errorf("dictionary: %w", err)
		}
		if err := validateOffsets(dict); err != nil {
			return fmt.Errorf("dictionary: %w", err)
		}
		idx, ok := a.Indices().(*array.Int32)
		if !ok {
			return fmt.Errorf("dictionary indices of %s", a.Indices().DataType())
		}
		n := int32(dict.Len())
		for i, j := range idx.Int32Values() {
			if j < 0 || j >= n {
				return fmt.Errorf("row %d: dictionary index %d of %d values", i, j, n)
			}
		}
	case *array.Struct:
		for i := range a.NumField() {
			if err := validateOffsets(a.Field(i)); err != nil {
				return err
			}
		}
	}
	return nil
}
