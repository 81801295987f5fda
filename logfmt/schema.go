package logfmt

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
)

// Version is the format version this package writes.
const Version = 1

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

// Schema returns the Arrow schema of format version 1 for segments written
// by the named proxy.
func Schema(proxy string) *arrow.Schema {
	md := arrow.NewMetadata(
		[]string{MetaVersion, MetaProxy},
		[]string{strconv.Itoa(Version), proxy},
	)
	return arrow.NewSchema(fieldsV1, &md)
}

// checkSchema reports the format version and proxy of a segment's schema,
// or why this build cannot read it.
func checkSchema(s *arrow.Schema) (version int, proxy string, err error) {
	vs, ok := s.Metadata().GetValue(MetaVersion)
	if !ok {
		return 0, "", fmt.Errorf("%w: schema has no %s metadata: not a shortfleet segment", ErrCorrupt, MetaVersion)
	}
	version, err = strconv.Atoi(vs)
	if err != nil || version != Version {
		return 0, "", fmt.Errorf("%w: segment format version %q, this build reads version %d", ErrUnknownVersion, vs, Version)
	}
	proxy, _ = s.Metadata().GetValue(MetaProxy)
	if s.NumFields() != len(fieldsV1) {
		return 0, "", fmt.Errorf("%w: version 1 segment has %d columns, want %d", ErrCorrupt, s.NumFields(), len(fieldsV1))
	}
	for i, want := range fieldsV1 {
		got := s.Field(i)
		if got.Name != want.Name || !arrow.TypeEqual(got.Type, want.Type) {
			return 0, "", fmt.Errorf("%w: column %d is %s %s, want %s %s", ErrCorrupt, i, got.Name, got.Type, want.Name, want.Type)
		}
	}
	return version, proxy, nil
}
