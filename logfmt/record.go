package logfmt

// Cache outcomes a proxy records for a request.
const (
	CacheNone    = ""        // nothing was looked up (not a code, not GET/HEAD)
	CacheHit     = "hit"     // answered from the in-process cache
	CacheReplica = "replica" // looked up on the local replica
	CachePrimary = "primary" // asked of the primary (read-your-writes)
	CacheMiss    = "miss"    // looked up and not found
)

// Redacted is the value a proxy logs for a request header that carries
// credentials (Authorization, Cookie, Proxy-Authorization, and any more it
// is told of): the header's name is kept, its value never is. See
// "Redacted headers" in the package documentation.
const Redacted = "[redacted]"

// Header is one request header as it arrived, or with its value Redacted.
type Header struct {
	Name, Value []byte
}

// Record is one request as a proxy answered it; Writer.Append copies it, so
// its byte slices may point into buffers that are reused afterwards (such as
// a fasthttp request's).
type Record struct {
	Time           int64 // arrival, Unix nanoseconds
	ClientAddr     []byte
	ClientPort     uint16
	Method         []byte
	Host           []byte
	Path           []byte
	Query          []byte
	Proto          []byte
	Status         uint16
	LinkID         int64 // 0 when the request named no link
	LatencyNS      int64
	Cache          string
	ReplicaLagNS   int64 // -1 when unknown
	UserAgent      []byte
	Referrer       []byte
	AcceptLanguage []byte
	Headers        []Header
	// Rule is 1 + the index of the link's redirect rule that gave the
	// target, 0 for none (format version 3 on; older segments read 0).
	Rule uint8
}

// Reset clears r for reuse, keeping its header slice's capacity.
func (r *Record) Reset() {
	h := r.Headers[:0]
	*r = Record{Headers: h}
}

// IsRedirect reports whether status is one a link answers with, i.e. a
// click that the stats count.
func IsRedirect(status uint16) bool {
	switch status {
	case 301, 302, 307, 308:
		return true
	}
	return false
}
