// Package codes turns link ids into short codes and back.
//
// A code is the base62 spelling, in exactly Length characters, of a keyed
// bijective permutation of the id over Bits bits (README.md decision 1).
// Codes never collide, so creating a link needs no retry loop; consecutive
// ids give unrelated-looking codes, so codes cannot be enumerated by
// counting; and a proxy turns a code back into an id and looks the link up
// by primary key.
//
// The permutation is an alternating Feistel network over exactly Bits bits:
// the value is split into a 20-bit and a 21-bit half, and each of six keyed
// rounds replaces one half with itself XOR a keyed hash of the other, the
// halves trading places. Every round is invertible, so the whole is a
// bijection of [0, 2^Bits), computed in one pass.
package codes

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// Length is the number of characters in every code.
	Length = 7
	// Bits is the width of the id space: 2^41 ids, about 2.2 trillion, fit
	// in seven base62 characters (62^7 is about 3.5 trillion).
	Bits = 41
	// MaxID is the largest id that has a code.
	MaxID = 1<<Bits - 1
	// MinKeyLen is the shortest secret key New accepts.
	MinKeyLen = 16

	rounds   = 6 // even: see unpermute
	alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// ErrNotCode is returned by Decode for input that is not a code of ours.
var ErrNotCode = errors.New("not a link code")

// ErrIDRange is returned by Encode for an id outside [1, MaxID].
var ErrIDRange = errors.New("link id out of code range")

// decodeTable maps a byte to its base62 digit, or 0xff.
var decodeTable = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// Codec encodes and decodes codes under one secret key. It is immutable and
// safe for concurrent use.
type Codec struct {
	keys [rounds]uint64
	bits uint // domain width
	hi   uint // width of the high half at the start; the low half has bits-hi
}

// New returns a Codec keyed by key, which must hold at least MinKeyLen bytes
// of secret. The same key must be used by every component, forever: a new
// key gives every existing link a different code.
func New(key []byte) (*Codec, error) {
	return newCodec(key, Bits)
}

// newCodec builds a codec over a narrower domain, so tests can check the
// permutation exhaustively.
func newCodec(key []byte, bits uint) (*Codec, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("code key has %d bytes, need at least %d", len(key), MinKeyLen)
	}
	c := &Codec{bits: bits, hi: bits / 2}
	for i := range c.keys {
		h := sha256.Sum256(append([]byte{byte(i), 'r'}, key...))
		c.keys[i] = binary.LittleEndian.Uint64(h[:8])
	}
	return c, nil
}

// round is the keyed Feistel round function: the splitmix64 finalizer of
// the half-block mixed with the round key.
func round(x, k uint64) uint64 {
	x ^= k
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func mask(w uint) uint64 { return 1<<w - 1 }

// permute is the bijection of [0, 2^bits).
func (c *Codec) permute(x uint64) uint64 {
	wa, wb := c.hi, c.bits-c.hi // widths of the high and low halves
	hi, lo := x>>wb, x&mask(wb)
	for _, k := range c.keys {
		hi, lo = lo, hi^(round(lo, k)&mask(wa))
		wa, wb = wb, wa
	}
	return hi<<wb | lo
}

// unpermute inverts permute. The number of rounds is even, so the halves
// end with the widths they started with.
func (c *Codec) unpermute(y uint64) uint64 {
	wa, wb := c.hi, c.bits-c.hi
	hi, lo := y>>wb, y&mask(wb)
	for i := len(c.keys) - 1; i >= 0; i-- {
		hi, lo = lo^(round(hi, c.keys[i])&mask(wb)), hi
		wa, wb = wb, wa
	}
	return hi<<wb | lo
}

// Encode returns the code of id.
func (c *Codec) Encode(id int64) (string, error) {
	var b [Length]byte
	if _, err := c.AppendEncode(b[:0], id); err != nil {
		return "", err
	}
	return string(b[:]), nil
}

// AppendEncode appends the code of id to dst.
func (c *Codec) AppendEncode(dst []byte, id int64) ([]byte, error) {
	if id < 1 || id > MaxID {
		return dst, fmt.Errorf("encode id %d: %w", id, ErrIDRange)
	}
	v := c.permute(uint64(id))
	var b [Length]byte
	for i := Length - 1; i >= 0; i-- {
		b[i] = alphabet[v%62]
		v /= 62
	}
	return append(dst, b[:]...), nil
}

// Decode returns the id whose code is s. It returns ErrNotCode for anything
// that is not exactly Length base62 characters spelling a value inside the
// permutation's domain, or that decodes to id 0 (never issued). It does not
// allocate.
func (c *Codec) Decode(s []byte) (int64, error) {
	if len(s) != Length {
		return 0, ErrNotCode
	}
	var v uint64
	for _, ch := range s {
		d := decodeTable[ch]
		if d == 0xff {
			return 0, ErrNotCode
		}
		v = v*62 + uint64(d)
	}
	if v >= 1<<c.bits {
		return 0, ErrNotCode
	}
	id := c.unpermute(v)
	if id == 0 {
		return 0, ErrNotCode
	}
	return int64(id), nil
}

// DecodeString is Decode for a string.
func (c *Codec) DecodeString(s string) (int64, error) {
	var b [Length]byte
	if len(s) != Length {
		return 0, ErrNotCode
	}
	copy(b[:], s)
	return c.Decode(b[:])
}
