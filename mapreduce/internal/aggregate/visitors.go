package aggregate

import (
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/axiomhq/hyperloglog"

	sfsql "shortfleet/sql"
)

// A day past sfsql.ExactMax visitors keeps them, until the run asks for
// the set (Day.Visitors) or they would make a dense sketch, as the sorted
// list of their sparse sketch keys: the keys axiomhq/hyperloglog's sparse
// form of a precision 14 sketch (sfsql.NewSketch) holds, one per distinct
// key. The library, hashes inserted one by one, collects new keys in a
// hash set and re-merges its whole compressed list each time that set
// reaches m/100 = 164 keys: for a busy day, a list of thousands of
// varints decoded and encoded again every 164 visitors, 17% of the
// aggregation's CPU (agg2-main-cpu.pprof in bench/results/profiles-23).
// Here a day's pending hashes are encoded, sorted and merged into the
// list every pendingMax hashes, in place, and the sketch is built from the
// list once, by its stored form.
//
// The sketch is the same as the one the hashes inserted one by one make:
// a sparse sketch's keys are the set of the encoded hashes whatever their
// order, and it turns dense exactly when its compressed list passes m
// bytes (when Estimate, or an insert that merges, finds it so), its
// registers then the largest rank of each index, again whatever the
// order. TestSparseKeysMatchSketch holds the two to the same stored bytes
// and counts.

const (
	sketchP  = 14 // sfsql.NewSketch's precision
	sketchPP = 25 // the library's sparse precision
	// sketchM is the register count, and the most bytes a sparse
	// sketch's compressed list has before the sketch turns dense.
	sketchM = 1 << sketchP
)

// sparseKeys are a day's visitors past sfsql.ExactMax: sorted, distinct
// sparse sketch keys, and the bytes of their compressed list.
type sparseKeys struct {
	keys  []uint32
	bytes int
}

// sparseKey is the library's sparse key of a hash (encodeHash, at
// precision sketchP and sparse precision sketchPP).
func sparseKey(x uint64) uint32 {
	idx := uint32(x>>(64-sketchPP)) & (1<<sketchPP - 1)
	if (x>>(64-sketchPP))&(1<<(sketchPP-sketchP)-1) == 0 {
		zeros := bits.LeadingZeros64((x&(1<<(64-sketchPP)-1))<<sketchPP|(1<<sketchPP-1)) + 1
		return idx<<7 | uint32(zeros<<1) | 1
	}
	return idx << 1
}

// varintLen is the length of x as the compressed list's varint.
func varintLen(x uint32) int {
	if x == 0 {
		return 1
	}
	return (bits.Len32(x) + 6) / 7
}

// add merges hashes into the keys; it encodes and sorts hs in place.
func (s *sparseKeys) add(hs []uint64) {
	for i, h := range hs {
		hs[i] = uint64(sparseKey(h))
	}
	slices.Sort(hs)
	hs = slices.Compact(hs)
	// Merge from the back, into the keys' room for all: the write index
	// never passes the next key to read.
	n := len(s.keys)
	s.keys = slices.Grow(s.keys, len(hs))[:n+len(hs)]
	k := s.keys
	i, j, w := n-1, len(hs)-1, n+len(hs)-1
	for j >= 0 {
		h := uint32(hs[j])
		switch {
		case i >= 0 && k[i] > h:
			k[w] = k[i]
			i--
		case i >= 0 && k[i] == h:
			k[w] = h
			i--
			j--
		default:
			k[w] = h
			j--
		}
		w--
	}
	// The keys below i are in place; a key in both leaves a gap before
	// the merged ones.
	if gap := w - i; gap > 0 {
		copy(k[i+1:], k[w+1:])
		s.keys = k[:len(k)-gap]
	}
	s.bytes = 0
	last := uint32(0)
	for _, x := range s.keys {
		s.bytes += varintLen(x - last)
		last = x
	}
}

// dense reports whether the keys' sketch is dense: its compressed list is
// past sketchM bytes.
func (s *sparseKeys) dense() bool { return s.bytes > sketchM }

// sketch is the keys' sketch, built from its stored form: sparse, its
// compressed list the keys and its set of new keys empty, or dense.
func (s *sparseKeys) sketch() *hyperloglog.Sketch {
	b := make([]byte, 0, 20+s.bytes)
	b = append(b, 2, sketchP, 0, 1) // version 2, p, no bias, sparse
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.keys)))
	var last uint32
	if len(s.keys) > 0 {
		last = s.keys[len(s.keys)-1]
	}
	b = binary.BigEndian.AppendUint32(b, last)
	b = binary.BigEndian.AppendUint32(b, uint32(s.bytes))
	prev := uint32(0)
	for _, x := range s.keys {
		b = binary.AppendUvarint(b, uint64(x-prev))
		prev = x
	}
	sk := sfsql.NewSketch()
	if err := sk.UnmarshalBinary(b); err != nil {
		// The keys are sparseKey's, sorted and distinct: the library
		// reads back any such list.
		panic("aggregate: sparse visitor keys: " + err.Error())
	}
	if !s.dense() {
		return sk
	}
	// As the library turns a sparse sketch dense (toNormal): registers
	// set from every key, the sparse form dropped.
	d := hyperloglog.NewNoSparse()
	if err := d.Merge(sk); err != nil {
		panic("aggregate: sparse visitor keys: " + err.Error())
	}
	return d
}
