package logfmt

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// strCol is a utf8 column being filled: Arrow's layout (offsets, then the
// bytes), in plain slices. A record never has nulls, so there is no
// validity bitmap to maintain, and appending is two slice appends.
type strCol struct {
	offsets []int32 // len = rows + 1, starting at 0
	data    []byte
}

func (c *strCol) reset() {
	c.offsets = append(c.offsets[:0], 0)
	c.data = c.data[:0]
}

// append adds v as it is. Text that is not valid UTF-8 is replaced by
// validUTF8, once the batch is cut, not here: one check over a whole
// column costs less than one per value, and Append is on the request path.
func (c *strCol) append(v []byte) {
	c.data = append(c.data, v...)
	c.offsets = append(c.offsets, int32(len(c.data)))
}

// validUTF8 replaces the invalid byte sequences of every value with U+FFFD:
// Arrow's utf8 type promises valid text to every reader. Values are valid
// if the column's bytes are and no value starts inside another's rune (a
// continuation byte); only a column failing that is rebuilt, value by
// value.
func (c *strCol) validUTF8() {
	if utf8.Valid(c.data) && c.runeAligned() {
		return
	}
	data := make([]byte, 0, len(c.data)+len(c.data)/2)
	offsets := make([]int32, 1, len(c.offsets))
	for i := 1; i < len(c.offsets); i++ {
		v := c.data[c.offsets[i-1]:c.offsets[i]]
		if utf8.Valid(v) {
			data = append(data, v...)
		} else {
			data = append(data, bytes.ToValidUTF8(v, []byte("\uFFFD"))...)
		}
		offsets = append(offsets, int32(len(data)))
	}
	c.data, c.offsets = data, offsets
}

// runeAligned reports whether every value starts at a rune's first byte.
func (c *strCol) runeAligned() bool {
	for _, o := range c.offsets[:len(c.offsets)-1] {
		if int(o) < len(c.data) && !utf8.RuneStart(c.data[o]) {
			return false
		}
	}
	return true
}

func (c *strCol) appendString(v string) {
	c.data = append(c.data, v...)
	c.offsets = append(c.offsets, int32(len(c.data)))
}

func (c *strCol) arrayData() arrow.ArrayData {
	return array.NewData(arrow.BinaryTypes.String, len(c.offsets)-1,
		[]*memory.Buffer{nil, memory.NewBufferBytes(sliceBytes(c.offsets)), memory.NewBufferBytes(c.data)}, nil, 0, 0)
}

// columns is one batch being filled.
type columns struct {
	rows                                                int
	time, linkID, latency, replicaLag                   []int64
	clientPort, status                                  []uint16
	proxy, clientAddr, method, host, path, query, proto strCol
	cache, userAgent, referrer, acceptLang              strCol
	headerOffsets                                       []int32 // list offsets into the header columns
	headerName, headerValue                             strCol
	rule                                                []uint8
}

func (c *columns) strCols() []*strCol {
	return []*strCol{&c.proxy, &c.clientAddr, &c.method, &c.host, &c.path, &c.query, &c.proto,
		&c.cache, &c.userAgent, &c.referrer, &c.acceptLang, &c.headerName, &c.headerValue}
}

func (c *columns) reset() {
	c.rows = 0
	c.time, c.linkID, c.latency, c.replicaLag = c.time[:0], c.linkID[:0], c.latency[:0], c.replicaLag[:0]
	c.clientPort, c.status, c.rule = c.clientPort[:0], c.status[:0], c.rule[:0]
	for _, s := range c.strCols() {
		s.reset()
	}
	c.headerOffsets = append(c.headerOffsets[:0], 0)
}

func (c *columns) append(proxy string, r *Record) {
	c.rows++
	c.time = append(c.time, r.Time)
	c.proxy.appendString(proxy)
	c.clientAddr.append(r.ClientAddr)
	c.clientPort = append(c.clientPort, r.ClientPort)
	c.method.append(r.Method)
	c.host.append(r.Host)
	c.path.append(r.Path)
	c.query.append(r.Query)
	c.proto.append(r.Proto)
	c.status = append(c.status, r.Status)
	c.linkID = append(c.linkID, r.LinkID)
	c.latency = append(c.latency, r.LatencyNS)
	c.cache.appendString(r.Cache)
	c.replicaLag = append(c.replicaLag, r.ReplicaLagNS)
	c.userAgent.append(r.UserAgent)
	c.referrer.append(r.Referrer)
	c.acceptLang.append(r.AcceptLanguage)
	for _, h := range r.Headers {
		c.headerName.append(h.Name)
		c.headerValue.append(h.Value)
	}
	c.headerOffsets = append(c.headerOffsets, int32(len(c.headerName.offsets)-1))
	c.rule = append(c.rule, r.Rule)
}

// sliceBytes views a slice of fixed-width values as bytes, without copying.
func sliceBytes[T int64 | int32 | uint16 | uint8](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}

func fixedData[T int64 | int32 | uint16 | uint8](t arrow.DataType, s []T) arrow.ArrayData {
	return array.NewData(t, len(s), []*memory.Buffer{nil, memory.NewBufferBytes(sliceBytes(s))}, nil, 0, 0)
}

// record wraps the columns in an Arrow record batch of schema, without
// copying (unless a column holds text that is not valid UTF-8, which is
// replaced first): the batch is valid until the columns are reset.
func (c *columns) record(schema *arrow.Schema) arrow.RecordBatch {
	for _, s := range c.strCols() {
		s.validUTF8()
	}
	f := schema.Fields()
	nHeaders := len(c.headerName.offsets) - 1
	headerStruct := array.NewData(headerType, nHeaders, []*memory.Buffer{nil},
		[]arrow.ArrayData{c.headerName.arrayData(), c.headerValue.arrayData()}, 0, 0)
	headers := array.NewData(f[ColHeaders].Type, c.rows,
		[]*memory.Buffer{nil, memory.NewBufferBytes(sliceBytes(c.headerOffsets))},
		[]arrow.ArrayData{headerStruct}, 0, 0)
	data := make([]arrow.ArrayData, numCols)
	data[ColTime] = fixedData(f[ColTime].Type, c.time)
	data[ColProxy] = c.proxy.arrayData()
	data[ColClientAddr] = c.clientAddr.arrayData()
	data[ColClientPort] = fixedData(f[ColClientPort].Type, c.clientPort)
	data[ColMethod] = c.method.arrayData()
	data[ColHost] = c.host.arrayData()
	data[ColPath] = c.path.arrayData()
	data[ColQuery] = c.query.arrayData()
	data[ColProto] = c.proto.arrayData()
	data[ColStatus] = fixedData(f[ColStatus].Type, c.status)
	data[ColLinkID] = fixedData(f[ColLinkID].Type, c.linkID)
	data[ColLatency] = fixedData(f[ColLatency].Type, c.latency)
	data[ColCache] = c.cache.arrayData()
	data[ColReplicaLag] = fixedData(f[ColReplicaLag].Type, c.replicaLag)
	data[ColUserAgent] = c.userAgent.arrayData()
	data[ColReferrer] = c.referrer.arrayData()
	data[ColAcceptLanguage] = c.acceptLang.arrayData()
	data[ColHeaders] = headers
	data[ColRule] = fixedData(f[ColRule].Type, c.rule)
	arrs := make([]arrow.Array, numCols)
	for i, d := range data {
		arrs[i] = array.MakeFromData(d)
		d.Release()
	}
	headerStruct.Release()
	rec := array.NewRecordBatch(schema, arrs, int64(c.rows))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}
