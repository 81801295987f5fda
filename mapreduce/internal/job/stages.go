package job

import (
	"shortfleet/logfmt"
)

// Key identifies one aggregate: a link in one hour.
type Key struct {
	LinkID int64
	Hour   int64 // Unix seconds of the hour's start, UTC
}

// Counts maps aggregates to their clicks.
type Counts map[Key]int64

const hourNS = int64(3600 * 1e9)

// Map is the map stage: it emits one key for every click in a batch, i.e.
// every redirect to a link. 404s, 410s and errors are logged but are not
// clicks.
func Map(b *logfmt.Batch, out []Key) []Key {
	status, link, times := b.Status.Values(), b.LinkID.Values(), b.Time.Values()
	for i := range status {
		if link[i] <= 0 || !logfmt.IsRedirect(status[i]) {
			continue
		}
		t := int64(times[i])
		out = append(out, Key{LinkID: link[i], Hour: (t - mod(t, hourNS)) / 1e9})
	}
	return out
}

// mod is the non-negative remainder, so times before 1970 floor correctly.
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Combine is the combine stage: it sums one segment's mapped keys into c,
// so each segment ships one count per key instead of one row per click.
func Combine(c Counts, keys []Key) {
	for _, k := range keys {
		c[k]++
	}
}

// Partition is the shuffle: it splits a segment's counts into n parts by
// link id, so each reducer sees every count of the links it owns.
func Partition(c Counts, n int) []Counts {
	parts := make([]Counts, n)
	for i := range parts {
		parts[i] = make(Counts, len(c)/n+1)
	}
	for k, v := range c {
		parts[partitionOf(k.LinkID, n)][k] += v
	}
	return parts
}

// partitionOf spreads link ids over n partitions. Ids are dense sequence
// numbers, so a multiplicative hash evens out runs of recent links.
func partitionOf(link int64, n int) int {
	return int((uint64(link) * 0x9e3779b97f4a7c15 >> 32) % uint64(n))
}

// Reduce is the reduce stage: it merges every segment's counts for one
// partition into the partition's totals.
func Reduce(inputs []Counts) Counts {
	size := 0
	for _, in := range inputs {
		size = max(size, len(in))
	}
	out := make(Counts, size)
	for _, in := range inputs {
		for k, v := range in {
			out[k] += v
		}
	}
	return out
}
