package codes

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

var testKey = []byte("0123456789abcdef-test-key")

func mustCodec(t testing.TB, bits uint) *Codec {
	t.Helper()
	c, err := newCodec(testKey, bits)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPermutationExhaustive checks, for narrow widths where every value can
// be visited, that the cycle-walked Feistel network is a bijection of the
// whole domain and that unpermute inverts it.
func TestPermutationExhaustive(t *testing.T) {
	for _, bits := range []uint{1, 2, 7, 12, 15, 20, 21} {
		c := mustCodec(t, bits)
		n := uint64(1) << bits
		seen := make([]bool, n)
		for x := uint64(0); x < n; x++ {
			y := c.permute(x)
			if y >= n {
				t.Fatalf("bits=%d: permute(%d) = %d, outside domain", bits, x, y)
			}
			if seen[y] {
				t.Fatalf("bits=%d: permute(%d) = %d collides", bits, x, y)
			}
			seen[y] = true
			if back := c.unpermute(y); back != x {
				t.Fatalf("bits=%d: unpermute(permute(%d)) = %d", bits, x, back)
			}
		}
	}
}

// TestRoundTripFullWidth samples the full 41-bit id space, including both
// ends, and checks every code has Length characters and decodes back.
func TestRoundTripFullWidth(t *testing.T) {
	c, err := New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []int64{1, 2, 3, 61, 62, 1 << 20, 1<<40 - 1, 1 << 40, MaxID - 1, MaxID}
	for range 200_000 {
		ids = append(ids, 1+rng.Int64N(MaxID))
	}
	for _, id := range ids {
		code, err := c.Encode(id)
		if err != nil {
			t.Fatalf("encode %d: %v", id, err)
		}
		if len(code) != Length {
			t.Fatalf("encode %d = %q, want %d characters", id, code, Length)
		}
		got, err := c.DecodeString(code)
		if err != nil || got != id {
			t.Fatalf("decode(encode(%d)=%q) = %d, %v", id, code, got, err)
		}
	}
}

func TestEncodeRejectsOutOfRange(t *testing.T) {
	c, _ := New(testKey)
	for _, id := range []int64{0, -1, MaxID + 1, 1 << 62} {
		if _, err := c.Encode(id); !errors.Is(err, ErrIDRange) {
			t.Errorf("encode %d: got %v, want ErrIDRange", id, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	c, _ := New(testKey)
	// The code of id 0 is never issued: find its spelling to check it.
	v := c.permute(0)
	var code0 [Length]byte
	for i := Length - 1; i >= 0; i-- {
		code0[i] = alphabet[v%62]
		v /= 62
	}
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"short", "abc123"},
		{"long", "abc12345"},
		{"slash", "abc/123"},
		{"dash", "abc-123"},
		{"space", "abc 123"},
		{"high byte", "abc\xff123"},
		{"beyond width", "zzzzzzz"},
		{"id zero", string(code0[:])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if id, err := c.DecodeString(tc.in); !errors.Is(err, ErrNotCode) {
				t.Fatalf("decode %q = %d, %v; want ErrNotCode", tc.in, id, err)
			}
		})
	}
}

func TestKeyMatters(t *testing.T) {
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("New accepted a 5-byte key")
	}
	a, _ := New(testKey)
	b, _ := New([]byte("another-secret-key-of-ours"))
	same := 0
	for id := int64(1); id <= 1000; id++ {
		x, _ := a.Encode(id)
		y, _ := b.Encode(id)
		if x == y {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("%d of 1000 ids have the same code under two keys", same)
	}
}

// TestSequentialIDsLookRandom checks that counting ids does not count codes:
// codes of consecutive ids differ in most positions and are not ordered.
func TestSequentialIDsLookRandom(t *testing.T) {
	c, _ := New(testKey)
	const n = 10_000
	prev, _ := c.AppendEncode(nil, 1)
	diffPositions, ascending := 0, 0
	for id := int64(2); id <= n; id++ {
		cur, _ := c.AppendEncode(nil, id)
		for i := range cur {
			if cur[i] != prev[i] {
				diffPositions++
			}
		}
		if bytes.Compare(cur, prev) > 0 {
			ascending++
		}
		prev = cur
	}
	if avg := float64(diffPositions) / (n - 1); avg < 5.5 {
		t.Errorf("consecutive codes differ in %.2f of %d positions on average, want > 5.5", avg, Length)
	}
	if frac := float64(ascending) / (n - 1); frac < 0.4 || frac > 0.6 {
		t.Errorf("%.2f of consecutive codes ascend, want about half", frac)
	}
}

func TestDecodeAllocs(t *testing.T) {
	c, _ := New(testKey)
	code, _ := c.AppendEncode(nil, 123456789)
	if n := testing.AllocsPerRun(1000, func() { _, _ = c.Decode(code) }); n != 0 {
		t.Fatalf("Decode allocates %v times, want 0", n)
	}
}

func FuzzDecode(f *testing.F) {
	c, _ := New(testKey)
	for _, id := range []int64{1, 42, MaxID} {
		code, _ := c.Encode(id)
		f.Add(code)
	}
	f.Add("zzzzzzz")
	f.Add("0000000")
	f.Add("")
	f.Add("abc\x00def")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := c.DecodeString(s)
		if err != nil {
			if !errors.Is(err, ErrNotCode) {
				t.Fatalf("decode %q: unexpected error %v", s, err)
			}
			return
		}
		if id < 1 || id > MaxID {
			t.Fatalf("decode %q = %d, outside [1, MaxID]", s, id)
		}
		back, err := c.Encode(id)
		if err != nil || back != s {
			t.Fatalf("encode(decode(%q)=%d) = %q, %v: codes must be canonical", s, id, back, err)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	c, _ := New(testKey)
	code, _ := c.AppendEncode(nil, 987654321)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(code); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	c, _ := New(testKey)
	buf := make([]byte, 0, Length)
	b.ReportAllocs()
	id := int64(1)
	for b.Loop() {
		buf, _ = c.AppendEncode(buf[:0], id)
		id++
	}
}
