package logfmt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/klauspost/compress/zstd"
)

// inflater is the ipc.MessageReader a Reader decodes through. It hands
// arrow-go each record batch with its buffers already decompressed, as if
// the batch had been written without compression: one reused zstd decoder
// decompresses each buffer in a single call, straight into the new body.
// arrow-go itself makes a new decoder for every batch and streams every
// buffer through it on goroutines of their own, which on a 2-core machine
// cost more than the decompression (BenchmarkDecode). Any message it does
// not rewrite (a schema, a batch compressed some other way) goes to
// arrow-go as it came, to be read the usual way.
type inflater struct {
	r        io.Reader // the stream, or nil to read data
	data     []byte    // the whole stream, read in place
	refCount atomic.Int64
	msg      *ipc.Message
	comp     []byte       // a stream's current compressed body
	roles    []bufferRole // a projected read's plan for each buffer of a batch; nil: decompress all
}

func newInflater(r io.Reader, data []byte) *inflater {
	m := &inflater{r: r, data: data}
	m.refCount.Add(1)
	return m
}

// read returns the stream's next n bytes: a slice of data, or of a buffer
// the next read reuses. A short stream is io.ErrUnexpectedEOF, or io.EOF
// if it ended before the first byte.
func (m *inflater) read(n int) ([]byte, error) {
	if m.r == nil {
		if len(m.data) < n {
			if len(m.data) == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		}
		b := m.data[:n:n]
		m.data = m.data[n:]
		return b, nil
	}
	if cap(m.comp) < n {
		m.comp = make([]byte, n)
	}
	b := m.comp[:n]
	_, err := io.ReadFull(m.r, b)
	return b, err
}

func (m *inflater) Retain() { m.refCount.Add(1) }

func (m *inflater) Release() {
	if m.refCount.Add(-1) == 0 && m.msg != nil {
		m.msg.Release()
		m.msg = nil
	}
}

// Message limits of every reader here, the inflater's and those Repair
// gives arrow-go's own message reader.
const (
	maxMetadata = 1 << 20
	maxBody     = maxAlloc / 2
)

// Flatbuffer vtable offsets and values used here, from Arrow's Message.fbs
// and Schema.fbs: 4 + 2 * field index.
const (
	vtMessageVersion    = 4  // Message.version
	vtMessageBodyLength = 10 // Message.bodyLength
	vtMessageMetadata   = 12 // Message.custom_metadata
	vtBatchLength       = 4  // RecordBatch.length
	vtBatchNodes        = 6  // RecordBatch.nodes
	vtBatchBuffers      = 8  // RecordBatch.buffers
	vtBatchCompression  = 10 // RecordBatch.compression
	vtBatchVariadic     = 12 // RecordBatch.variadicBufferCounts
	vtCompressionCodec  = 4  // BodyCompression.codec
	vtCompressionMethod = 6  // BodyCompression.method
	messageHeaderBatch  = 3  // MessageHeader.RecordBatch
	codecZstd           = 1  // CompressionType.ZSTD
	methodBuffer        = 0  // BodyCompressionMethod.BUFFER
	structSize          = 16 // FieldNode and Buffer: two longs
	bufferAlign         = 8
	uncompressedBuffer  = -1 // a buffer's length prefix when it is stored as is
	continuationToken   = 0xffffffff
)

// Message reads the next message, decompressing a record batch's body.
func (m *inflater) Message() (msg *ipc.Message, err error) {
	if m.msg != nil {
		m.msg.Release()
		m.msg = nil
	}
	b, err := m.read(4)
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 {
		return nil, io.EOF
	}
	if n != continuationToken {
		return nil, fmt.Errorf("message without a continuation marker")
	}
	if b, err = m.read(4); err != nil {
		return nil, fmt.Errorf("read message length: %w", noEOF(err))
	}
	n = binary.LittleEndian.Uint32(b)
	if n == 0 {
		return nil, io.EOF
	}
	if n < 8 || n > maxMetadata {
		return nil, fmt.Errorf("message metadata of %d bytes", n)
	}
	if b, err = m.read(int(n)); err != nil {
		return nil, fmt.Errorf("read message metadata: %w", noEOF(err))
	}
	meta := append([]byte(nil), b...)
	hdr, err := parseMessage(meta)
	if err != nil {
		return nil, err
	}
	if hdr.bodyLen < 0 || hdr.bodyLen > maxBody {
		return nil, fmt.Errorf("message body of %d bytes", hdr.bodyLen)
	}
	body, err := m.read(int(hdr.bodyLen))
	if err != nil && hdr.bodyLen > 0 {
		return nil, fmt.Errorf("read message body: %w", noEOF(err))
	}
	var out *memory.Buffer
	if hdr.zstdBatch {
		meta, out, err = inflate(meta, &hdr, body, m.roles)
		if err != nil {
			return nil, err
		}
	} else {
		out = memory.NewBufferBytes(append([]byte(nil), body...))
	}
	defer out.Release()
	m.msg = ipc.NewMessage(memory.NewBufferBytes(meta), out)
	return m.msg, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// message is what parseMessage reads of a message's metadata.
type message struct {
	version   int16
	bodyLen   int64
	zstdBatch bool // a record batch whose buffers are zstd frames
	batch     flatbuffers.Table
}

// parseMessage reads a message's metadata. Only a record batch compressed
// buffer by buffer with zstd, with no custom metadata, is marked for
// inflate.
func parseMessage(meta []byte) (h message, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed message metadata: %v", p)
		}
	}()
	msg := flatbuffers.Table{Bytes: meta, Pos: flatbuffers.GetUOffsetT(meta)}
	h.version = msg.GetInt16Slot(vtMessageVersion, 0)
	h.bodyLen = msg.GetInt64Slot(vtMessageBodyLength, 0)
	if msg.GetByteSlot(vtMessageHeaderType, 0) != messageHeaderBatch || msg.Offset(vtMessageMetadata) != 0 {
		return h, nil
	}
	o := msg.Offset(vtMessageHeader)
	if o == 0 {
		return h, nil
	}
	msg.Union(&h.batch, flatbuffers.UOffsetT(o))
	c := h.batch.Offset(vtBatchCompression)
	if c == 0 {
		return h, nil
	}
	comp := flatbuffers.Table{Bytes: meta, Pos: h.batch.Indirect(flatbuffers.UOffsetT(c) + h.batch.Pos)}
	h.zstdBatch = comp.GetByteSlot(vtCompressionCodec, 0) == codecZstd &&
		comp.GetByteSlot(vtCompressionMethod, methodBuffer) == methodBuffer
	return h, nil
}

// decoders are zstd decoders for one goroutine's inflate at a time: one
// call decompresses one buffer, synchronously.
var decoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxAlloc))
	if err != nil {
		panic(err) // only for invalid options
	}
	return d
}}

// inflate decompresses a zstd batch's buffers into one new body, each
// buffer 8-byte aligned, and returns metadata that describes the batch as
// uncompressed. Every offset and length is checked against the body first.
// roles, if it has a role for each buffer, leaves the buffers of columns
// not read compressed: see bufferRole.
func inflate(meta []byte, h *message, body []byte, roles []bufferRole) (newMeta []byte, out *memory.Buffer, err error) {
	defer func() {
		if p := recover(); p != nil {
			if out != nil {
				out.Release()
			}
			newMeta, out, err = nil, nil, fmt.Errorf("malformed record batch: %v", p)
		}
	}()
	bt := &h.batch
	bufs := vectorOf(bt, vtBatchBuffers, structSize)
	if len(roles) != bufs.n {
		roles = nil
	}
	// A buffer's n bytes at from go to out at to, size bytes: decompressed,
	// copied if raw, or zeros if role says so.
	type span struct {
		from, n, to, size int64
		raw               bool
		role              bufferRole
	}
	spans := make([]span, bufs.n)
	var total, zeros int64
	for i := range spans {
		off, n := bufs.long(i, 0), bufs.long(i, 1)
		if n == 0 {
			continue
		}
		if off < 0 || n < 8 || off > int64(len(body))-n {
			return nil, nil, fmt.Errorf("buffer %d (%d bytes at %d) outside a %d-byte body", i, n, off, len(body))
		}
		size := int64(binary.LittleEndian.Uint64(body[off:]))
		raw := size == uncompressedBuffer
		if raw {
			size = n - 8
		}
		if size < 0 || size > maxAlloc {
			return nil, nil, fmt.Errorf("buffer %d claims %d bytes", i, size)
		}
		s := span{from: off + 8, n: n - 8, size: size, raw: raw}
		if roles != nil {
			s.role = roles[i]
		}
		switch s.role {
		case zeroBuffer:
			zeros = max(zeros, size)
		case emptyBuffer:
			s.size = 0
		default:
			s.to = total
			total += align8(size)
		}
		spans[i] = s
		if total > maxAlloc {
			return nil, nil, fmt.Errorf("record batch of over %d bytes", maxAlloc)
		}
	}
	// Every zeroBuffer is one run of zeros at the end, as long as the
	// longest.
	zerosAt := total
	total += align8(zeros)
	if total > maxAlloc {
		return nil, nil, fmt.Errorf("record batch of over %d bytes", maxAlloc)
	}
	out = memory.NewResizableBuffer(readAlloc)
	out.Resize(int(total))
	dst := out.Bytes()
	clear(dst[zerosAt:])
	dec := decoders.Get().(*zstd.Decoder)
	defer decoders.Put(dec)
	for i := range spans {
		s := &spans[i]
		if s.role == zeroBuffer {
			s.to = zerosAt
			continue
		}
		if s.size == 0 {
			continue
		}
		src, to := body[s.from:s.from+s.n], dst[s.to:s.to+s.size:s.to+s.size]
		// Padding comes from the pool: zero it, as a writer would have.
		clear(dst[s.to+s.size : s.to+align8(s.size)])
		if s.raw {
			copy(to, src)
			continue
		}
		got, err := dec.DecodeAll(src, to[:0])
		if err != nil {
			out.Release()
			return nil, nil, fmt.Errorf("buffer %d: %w", i, err)
		}
		if int64(len(got)) != s.size || &got[0] != &to[0] {
			out.Release()
			return nil, nil, fmt.Errorf("buffer %d holds %d bytes, claims %d", i, len(got), s.size)
		}
	}
	nodes := vectorOf(bt, vtBatchNodes, structSize)
	variadic := vectorOf(bt, vtBatchVariadic, 8)

	b := flatbuffers.NewBuilder(len(meta))
	var variadicVec flatbuffers.UOffsetT
	if variadic.present {
		b.StartVector(8, variadic.n, 8)
		for i := variadic.n - 1; i >= 0; i-- {
			b.PrependInt64(variadic.long(i, 0))
		}
		variadicVec = b.EndVector(variadic.n)
	}
	b.StartVector(structSize, len(spans), 8)
	for i := len(spans) - 1; i >= 0; i-- {
		b.Prep(8, structSize)
		b.PrependInt64(spans[i].size)
		b.PrependInt64(spans[i].to)
	}
	bufVec := b.EndVector(len(spans))
	b.StartVector(structSize, nodes.n, 8)
	for i := nodes.n - 1; i >= 0; i-- {
		b.Prep(8, structSize)
		b.PrependInt64(nodes.long(i, 1))
		b.PrependInt64(nodes.long(i, 0))
	}
	nodeVec := b.EndVector(nodes.n)
	b.StartObject(5)
	b.PrependInt64Slot(0, bt.GetInt64Slot(vtBatchLength, 0), 0)
	b.PrependUOffsetTSlot(1, nodeVec, 0)
	b.PrependUOffsetTSlot(2, bufVec, 0)
	if variadic.present {
		b.PrependUOffsetTSlot(4, variadicVec, 0)
	}
	batch := b.EndObject()
	b.StartObject(5)
	b.PrependInt64Slot(3, total, 0)
	b.PrependUOffsetTSlot(2, batch, 0)
	b.PrependInt16Slot(0, h.version, 0)
	b.PrependByteSlot(1, messageHeaderBatch, 0)
	b.Finish(b.EndObject())
	return b.FinishedBytes(), out, nil
}

// vector is a flatbuffer vector of fixed-size elements, bounds-checked.
type vector struct {
	t       *flatbuffers.Table
	base    flatbuffers.UOffsetT
	n, size int
	present bool
}

// vectorOf finds a table's vector field of elements of size bytes and
// checks that it lies within the table's buffer.
func vectorOf(t *flatbuffers.Table, vt flatbuffers.VOffsetT, size int) vector {
	o := t.Offset(vt)
	if o == 0 {
		return vector{t: t, size: size}
	}
	n := t.VectorLen(flatbuffers.UOffsetT(o))
	base := t.Vector(flatbuffers.UOffsetT(o))
	if n < 0 || int(base) > len(t.Bytes) || n > (len(t.Bytes)-int(base))/size {
		panic(fmt.Sprintf("vector of %d %d-byte entries outside a %d-byte message", n, size, len(t.Bytes)))
	}
	return vector{t: t, base: base, n: n, size: size, present: true}
}

// long is the j-th 8-byte field of the i-th element.
func (v vector) long(i, j int) int64 {
	return v.t.GetInt64(v.base + flatbuffers.UOffsetT(i*v.size+8*j))
}

func align8(n int64) int64 { return (n + bufferAlign - 1) &^ (bufferAlign - 1) }

// bufferRole is what a projected read (NewColumnsReader) does with one
// buffer of a record batch. A column not read is not decompressed: its
// validity bitmap, offsets and fixed-width values become zeros of the
// declared length (all of them one shared run of zeros), and its string
// bytes none at all. Zero offsets make every string and list empty, so
// the column reads as zero values and passes validation.
type bufferRole uint8

const (
	keepBuffer  bufferRole = iota // decompress
	zeroBuffer                    // zeros of the declared length
	emptyBuffer                   // no bytes: a skipped column's string data
)

// bufferRoles lays out the buffers of a schema's record batches in IPC
// order (each column's, depth first) and marks those of columns not in
// keep. ok is false for a schema with a type it does not know: read such a
// batch whole.
func bufferRoles(schema *arrow.Schema, keep []int) (roles []bufferRole, ok bool) {
	for i, f := range schema.Fields() {
		if roles, ok = appendRoles(roles, f.Type, !slices.Contains(keep, i)); !ok {
			return nil, false
		}
	}
	return roles, true
}

func appendRoles(roles []bufferRole, dt arrow.DataType, skip bool) ([]bufferRole, bool) {
	role, data := keepBuffer, keepBuffer
	if skip {
		role, data = zeroBuffer, emptyBuffer
	}
	switch dt := dt.(type) {
	case *arrow.StringType, *arrow.BinaryType:
		return append(roles, role, role, data), true // validity, offsets, bytes
	case *arrow.ListType:
		return appendRoles(append(roles, role, role), dt.Elem(), skip) // validity, offsets, then the values
	case *arrow.StructType:
		roles = append(roles, role) // validity, then each field's
		for _, f := range dt.Fields() {
			var ok bool
			if roles, ok = appendRoles(roles, f.Type, skip); !ok {
				return nil, false
			}
		}
		return roles, true
	case *arrow.DictionaryType:
		// validity, indices. The values come in dictionary batches, which
		// arrow-go reads whole; the zeroed indices stay in range of any
		// dictionary with a value, and Batch reads the column as empty
		// strings.
		return append(roles, role, role), true
	case *arrow.TimestampType, *arrow.Int64Type, *arrow.Uint64Type, *arrow.Int32Type, *arrow.Uint32Type,
		*arrow.Int16Type, *arrow.Uint16Type, *arrow.Int8Type, *arrow.Uint8Type, *arrow.Float64Type, *arrow.Float32Type:
		return append(roles, role, role), true // validity, values
	}
	return nil, false
}
