// Package logfmt is the on-disk format of the proxies' raw access logs,
// shared by the proxy that writes it and the mapreduce job that reads it.
//
// # Log folder
//
// Each proxy writes to one folder of its own:
//
//	logs/
//	├── manifest.jsonl                      one line per sealed segment, in seal order
//	├── ingested.txt                        sealed segments the mapreduce job acknowledged, one name a line
//	├── 20261122T133000.000000001Z.arrows   sealed segments: immutable
//	├── 20261122T133100.000000002Z.arrows
//	└── 20261122T133200.000000003Z.arrows.open   the one segment being written
//
// A segment is named after the moment it was opened (UTC, nanoseconds), so
// names sort by time and never repeat on one proxy.
//
// # Segment
//
// A segment is an Arrow IPC stream (the "streaming format"). A sealed
// segment's batches have their buffers compressed with zstd (the IPC
// format's own body compression), so any Arrow implementation with zstd
// reads it; the open segment's small batches are written uncompressed.
//
//	┌──────────────────────────────────────────────────────────────┐
//	│ schema message                                               │
//	│   fields: time … headers (see below)                         │
//	│   metadata: shortfleet.logfmt.version = "4" (open: "3")      │
//	│             shortfleet.proxy          = "proxy-01"           │
//	├──────────────────────────────────────────────────────────────┤
//	│ (sealed) dictionary batches: user_agent, referrer, language  │
//	│ record batch 1   open: ≤ FlushRows rows, every FlushInterval;│
//	│                  sealed: about 65,536 rows                   │
//	│   ┌ continuation 0xFFFFFFFF │ metadata length │ metadata ┐   │
//	│   └ body: open: buffers as they are; sealed: one zstd    ┘   │
//	│           frame per buffer, each after its uncompressed      │
//	│           length (int64, little endian)                      │
//	├──────────────────────────────────────────────────────────────┤
//	│ record batch 2 … n                                           │
//	├──────────────────────────────────────────────────────────────┤
//	│ end of stream   0xFFFFFFFF 0x00000000                        │
//	└──────────────────────────────────────────────────────────────┘
//
// # Columns of version 1
//
//	time             timestamp[ns, UTC]  when the request arrived
//	proxy            utf8                the proxy's id
//	client_addr      utf8                client IP (from the socket, or PROXY/X-Forwarded-For from a trusted balancer)
//	client_port      uint16              client port (from the socket, PROXY, or a trusted balancer's
//	                                     X-Client-Port when client_addr is the address it appended
//	                                     to X-Forwarded-For); 0 when unknown
//	method           utf8
//	host             utf8                Host header
//	path             utf8                path as sent (not unescaped)
//	query            utf8                query string without "?"
//	proto            utf8                e.g. HTTP/1.1
//	status           uint16              status answered
//	link_id          int64               the link answered, 0 for none
//	latency_ns       int64               time to answer
//	cache            utf8                "", hit, replica, primary or miss
//	replica_lag_ns   int64               the replica's replay lag then, -1 if unknown
//	user_agent       utf8
//	referrer         utf8
//	accept_language  utf8
//	headers          list<struct<name: utf8, value: utf8>>  every other request header, in order
//
// Text that is not valid UTF-8 is stored with each invalid byte sequence
// replaced by U+FFFD, so every Arrow reader accepts the column.
//
// # Redacted headers
//
// Segments are kept a year, served by the proxies' admin API and copied
// into the mapreduce job's Parquet archive, so the headers column never
// holds credentials: the values of Authorization, Cookie and
// Proxy-Authorization, and of any header named in the proxy's
// -redact-headers (SHORTFLEET_REDACT_HEADERS; names match without regard
// to case), are written as the fixed mark "[redacted]" (Redacted), under
// the header's name, so a reader still sees that the header came.
// Segments written before a proxy redacted may still hold the values.
//
// # Version 2: sealed segments
//
// Open segments are version 1. Sealing (compaction into batches of about
// 65,536 rows: open batches are gathered until they reach it) writes
// version 2: the same columns, but user_agent,
// referrer and accept_language (DictColumns) are
// dictionary<values=utf8, indices=int32>. Each batch has one dictionary
// batch per such column before it, holding each distinct value once, in
// order of first appearance; a later batch replaces them (the streaming
// format allows it). A few hundred user agents make up tens of thousands
// of rows, so a reader decompresses each once, and the mapreduce job
// classifies each once, instead of once a row. Batch.Plain spells a
// version 2 batch out as version 1.
//
// # Versions 3 and 4: the rule column
//
// Version 3 (open) and 4 (sealed) are versions 1 and 2 with one more
// column at the end:
//
//	rule             uint8               1 + the index of the link's redirect rule that gave
//	                                     the target (issue 21); 0 when none did or the link has none
//
// A proxy writes version 3 and seals it as 4. A version 1 open segment a
// proxy left before its upgrade is still sealed as version 2. Readers
// read all four versions; Row.Rule and Batch.RuleOf read 0 from versions
// 1 and 2, and Batch.Plain spells version 4 out as 3 (2 as 1).
//
// # Manifest
//
// manifest.jsonl has one JSON object per line for each sealed segment:
//
//	{"name":"20261122T133000.000000001Z.arrows","version":2,"rows":4096,
//	 "bytes":183211,"sha256":"9f…","min_time_ns":…,"max_time_ns":…}
//
// A reader verifies a segment's size and SHA-256 against its line before
// decoding it.
//
// # Durability
//
// Records are appended to in-memory builders, in a few shards so that
// concurrent appends do not wait for one another; a shard's batch is cut
// every FlushRows rows, every shard's every FlushInterval, and written,
// uncompressed, to the open segment. A segment is sealed by size or age:
// end-of-stream marker, compaction into large zstd-compressed batches in a
// new file, fsync, atomic rename to its sealed name, fsync of the folder,
// then its manifest line, fsynced, and the open file removed. A sealed
// segment is never changed afterwards.
//
// On a clean stop (Writer.Close) everything buffered is sealed: nothing is
// lost. After a crash at most the last FlushInterval of records is lost: at
// start-up Repair cuts the open segment after its last whole batch, ends and
// seals it, and enters sealed segments the manifest lacks. A running writer
// repairs its folder the same way after a failed write or seal (a full
// disk), and lists what it recovered for ingestion at once.
//
// # Reading
//
// NewReader and NewBytesReader (a segment in memory, read in place) give
// batches through arrow-go's IPC reader, but decompress each batch's zstd
// buffers themselves, with one reused decoder, before arrow-go sees it:
// arrow-go would make a decoder per batch and stream every buffer through
// goroutines, which costs more than the decompression. (Dictionary batches,
// small, are left to arrow-go.) NewColumnsReader decompresses only the
// columns asked for; the others read as zero values. Every batch is
// validated before it is handed out, dictionary indices included. A
// Batch's DictColumns are Strings, plain or dictionary-encoded alike.
//
// # Versions
//
// The version is in the schema metadata. A reader rejects a whole number
// above every version it knows with ErrUnknownVersion (a newer writer's
// segment, which mapreduce leaves pending for an upgraded reader), and any
// other version it does not know with ErrCorrupt. A version once written is never changed:
// a change of columns is the next version, and readers keep reading the old
// ones. testdata/v1.arrows (sealed when sealing wrote version 1),
// testdata/v2.arrows and testdata/v4.arrows are read by a test forever.
package logfmt
