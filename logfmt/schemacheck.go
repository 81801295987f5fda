package logfmt

import (
	"encoding/binary"
	"fmt"
	"io"

	flatbuffers "github.com/google/flatbuffers/go"
)

// maxSchemaMessage bounds a segment's schema message; version 1's is about
// 2 KiB.
const maxSchemaMessage = 64 << 10

// readSchemaPrefix reads a stream's first message, which must be a schema,
// and checks it before arrow-go decodes it: arrow-go sizes slices from the
// vector lengths a schema claims, so a corrupt length would ask for
// terabytes and crash the process instead of failing. It returns the bytes
// read, to be replayed to the Arrow reader.
func readSchemaPrefix(r io.Reader) ([]byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: read schema message: %v", ErrCorrupt, err)
	}
	if binary.LittleEndian.Uint32(hdr[:4]) != 0xffffffff {
		return nil, fmt.Errorf("%w: stream does not start with an IPC message", ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(hdr[4:])
	if n < 8 || n > maxSchemaMessage {
		return nil, fmt.Errorf("%w: schema message of %d bytes", ErrCorrupt, n)
	}
	buf := make([]byte, 8+n)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[8:]); err != nil {
		return nil, fmt.Errorf("%w: read schema message: %v", ErrCorrupt, err)
	}
	if err := checkSchemaVectors(buf[8:]); err != nil {
		return nil, fmt.Errorf("%w: schema message: %v", ErrCorrupt, err)
	}
	return buf, nil
}

// Flatbuffer vtable offsets of the fields checked, from Arrow's Message.fbs
// and Schema.fbs: 4 + 2 * field index.
const (
	vtMessageHeaderType = 6  // Message.header_type
	vtMessageHeader     = 8  // Message.header
	vtSchemaFields      = 6  // Schema.fields
	vtSchemaMetadata    = 8  // Schema.custom_metadata
	vtFieldChildren     = 14 // Field.children
	vtFieldMetadata     = 16 // Field.custom_metadata
	messageHeaderSchema = 1  // MessageHeader.Schema
	maxSchemaNesting    = 32
)

func checkSchemaVectors(meta []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed flatbuffer: %v", p)
		}
	}()
	if len(meta) < 4 {
		return fmt.Errorf("too short")
	}
	msg := flatbuffers.Table{Bytes: meta, Pos: flatbuffers.GetUOffsetT(meta)}
	if o := msg.Offset(vtMessageHeaderType); o == 0 || msg.GetByte(flatbuffers.UOffsetT(o)+msg.Pos) != messageHeaderSchema {
		return fmt.Errorf("first message is not a schema")
	}
	o := msg.Offset(vtMessageHeader)
	if o == 0 {
		return fmt.Errorf("schema message without a schema")
	}
	var schema flatbuffers.Table
	msg.Union(&schema, flatbuffers.UOffsetT(o))
	if err := checkVector(&schema, vtSchemaMetadata, len(meta)); err != nil {
		return err
	}
	return checkFields(&schema, vtSchemaFields, len(meta), 0)
}

// checkVector checks that a vector of 4-byte offsets fits in the buffer.
func checkVector(t *flatbuffers.Table, vt flatbuffers.VOffsetT, size int) error {
	o := t.Offset(vt)
	if o == 0 {
		return nil
	}
	if n := t.VectorLen(flatbuffers.UOffsetT(o)); n < 0 || n > size/4 {
		return fmt.Errorf("vector claims %d entries in a %d-byte message", n, size)
	}
	return nil
}

func checkFields(t *flatbuffers.Table, vt flatbuffers.VOffsetT, size, depth int) error {
	if depth > maxSchemaNesting {
		return fmt.Errorf("fields nested deeper than %d", maxSchemaNesting)
	}
	if err := checkVector(t, vt, size); err != nil {
		return err
	}
	o := t.Offset(vt)
	if o == 0 {
		return nil
	}
	n := t.VectorLen(flatbuffers.UOffsetT(o))
	base := t.Vector(flatbuffers.UOffsetT(o))
	for i := range n {
		var f flatbuffers.Table
		f.Bytes = t.Bytes
		f.Pos = t.Indirect(base + flatbuffers.UOffsetT(i)*4)
		if err := checkVector(&f, vtFieldMetadata, size); err != nil {
			return err
		}
		if err := checkFields(&f, vtFieldChildren, size, depth+1); err != nil {
			return err
		}
	}
	return nil
}
