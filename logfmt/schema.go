package logfmt

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
)

// Format versions. Version is that of open segments, which a proxy writes
// batch by batch as requests come. SealedVersion is that of the segments
// sealing makes of them: Version's columns, with user_agent, referrer and
// accept_language dictionary-encoded (see DictColumns). Versions 1 (open)
// and 2 (sealed) are version 3 and 4 without the rule column; readers read
// all four, and sealing still seals a version 1 open segment (left by a
// proxy before its upgrade) as version 2.
const (
	Version       = 3
	SealedVersion = 4
)

// sealedOf is the version sealing makes of each open version.
var sealedOf = map[int]int{1: 2, 3: 4}

// Schema metadata keys every segment carries.
const (
	MetaVersion = "shortfleet.logfmt.version"
	MetaProxy   = "shortfleet.proxy"
)

// Column indices of format version 1. A version once written never changes;
// a new version adds columns at the end or gets a schema of its own.
const (
	ColTime = iota
	ColProxy
	ColClientAddr
	ColClientPort
	ColMethod
	ColHost
	ColPath
	ColQuery
	ColProto
	ColStatus
	ColLinkID
	ColLatency
	ColCache
	ColReplicaLag
	ColUserAgent
	ColReferrer
	ColAcceptLanguage
	ColHeaders
	// ColRule is version 3's column after version 1's: which redirect rule
	// of the link answered (see Record.Rule).
	ColRule
	numCols
)

var headerType = arrow.StructOf(
	arrow.Field{Name: "name", Type: arrow.BinaryTypes.String},
	arrow.Field{Name: "value", Type: arrow.BinaryTypes.String},
)

// fieldsV1 are the columns of format version 1, in order.
var fieldsV1 = []arrow.Field{
	ColTime:           {Name: "time", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}},
	ColProxy:          {Name: "proxy", Type: arrow.BinaryTypes.String},
	ColClientAddr:     {Name: "client_addr", Type: arrow.BinaryTypes.String},
	ColClientPort:     {Name: "client_port", Type: arrow.PrimitiveTypes.Uint16},
	ColMethod:         {Name: "method", Type: arrow.BinaryTypes.String},
	ColHost:           {Name: "host", Type: arrow.BinaryTypes.String},
	ColPath:           {Name: "path", Type: arrow.BinaryTypes.String},
	ColQuery:          {Name: "query", Type: arrow.BinaryTypes.String},
	ColProto:          {Name: "proto", Type: arrow.BinaryTypes.String},
	ColStatus:         {Name: "status", Type: arrow.PrimitiveTypes.Uint16},
	ColLinkID:         {Name: "link_id", Type: arrow.PrimitiveTypes.Int64},
	ColLatency:        {Name: "latency_ns", Type: arrow.PrimitiveTypes.Int64},
	ColCache:          {Name: "cache", Type: arrow.BinaryTypes.String},
	ColReplicaLag:     {Name: "replica_lag_ns", Type: arrow.PrimitiveTypes.Int64},
	ColUserAgent:      {Name: "user_agent", Type: arrow.BinaryTypes.String},
	ColReferrer:       {Name: "referrer", Type: arrow.BinaryTypes.String},
	ColAcceptLanguage: {Name: "accept_language", Type: arrow.BinaryTypes.String},
	ColHeaders:        {Name: "headers", Type: arrow.ListOf(headerType)},
}

// DictColumns are the columns version 2 dictionary-encodes: a few hundred
// distinct values in tens of thousands of rows. Each is stored once per
// batch, so a reader decompresses, and the mapreduce job classifies, each
// distinct value once instead of once a row.
var DictColumns = []int{ColUserAgent, ColReferrer, ColAcceptLanguage}

// dictString is the type of a DictColumns column in version 2.
var dictString = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// fieldsV2 are the columns of format version 2, in order.
var fieldsV2 = func() []arrow.Field {
	f := slices.Clone(fieldsV1)
	for _, c := range DictColumns {
		f[c].Type = dictString
	}
	return f
}()

// ruleField is the column versions 3 and 4 add to 1 and 2.
var ruleField = arrow.Field{Name: "rule", Type: arrow.PrimitiveTypes.Uint8}

// fieldsOf are each version's columns.
var fieldsOf = map[int][]arrow.Field{1: fieldsV1, 2: fieldsV2,
	3: append(slices.Clone(fieldsV1), ruleField), 4: append(slices.Clone(fieldsV2), ruleField)}

// Schema returns the Arrow schema of format version 1 for segments written
// by the named proxy.
func Schema(proxy string) *arrow.Schema { return schemaOf(Version, proxy) }

// schemaOf returns the schema of a format version.
func schemaOf(version int, proxy string) *arrow.Schema {
	md := arrow.NewMetadata(
		[]string{MetaVersion, MetaProxy},
		[]string{strconv.Itoa(version), proxy},
	)
	return arrow.NewSchema(fieldsOf[version], &md)
}

// checkSchema reports the format version and proxy of a segment's schema,
// or why this build cannot read it.
func checkSchema(s *arrow.Schema) (version int, proxy string, err error) {
	vs, ok := s.Metadata().GetValue(MetaVersion)
	if !ok {
		return 0, "", fmt.Errorf("%w: schema has no %s metadata: not a shortfleet segment", ErrCorrupt, MetaVersion)
	}
	version, err = strconv.Atoi(vs)
	fields := fieldsOf[version]
	switch {
	case err != nil || version <= 0 || vs[0] == '+' || (fields == nil && version <= SealedVersion):
		// Not a version any build wrote: damage, not the future.
		return 0, "", fmt.Errorf("%w: segment format version %q", ErrCorrupt, vs)
	case fields == nil:
		// A newer writer's: left for a reader that knows it.
		return 0, "", fmt.Errorf("%w: segment format version %q, this build reads versions 1 to %d", ErrUnknownVersion, vs, SealedVersion)
	}
	proxy, _ = s.Metadata().GetValue(MetaProxy)
	if s.NumFields() != len(fields) {
		return 0, "", fmt.Errorf("%w: version %d segment has %d columns, want %d", ErrCorrupt, version, s.NumFields(), len(fields))
	}
	for i, want := range fields {
		got := s.Field(i)
		if got.Name != want.Name || !arrow.TypeEqual(got.Type, want.Type) {
			return 0, "", fmt.Errorf("%w: column %d is %s %s, want %s %s", ErrCorrupt, i, got.Name, got.Type, want.Name, want.Type)
		}
	}
	return version, proxy, nil
}
