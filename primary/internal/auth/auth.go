// Package auth holds the primary's credentials: argon2id password hashes
// and random API keys stored only as their SHA-256.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/alexedwards/argon2id"
)

// PasswordParams are the argon2id costs: OWASP's recommended minimum
// (19 MiB, 2 passes, 1 lane), which keeps sign-up and log-in bursts from
// exhausting memory while costing an attacker the same per guess.
var PasswordParams = &argon2id.Params{
	Memory:      19 * 1024,
	Iterations:  2,
	Parallelism: 1,
	SaltLength:  16,
	KeyLength:   32,
}

// Password length bounds, in bytes.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 256
)

// ErrPasswordPolicy is returned for a password outside the length bounds.
var ErrPasswordPolicy = fmt.Errorf("password must be %d to %d characters", MinPasswordLen, MaxPasswordLen)

// HashPassword returns the argon2id PHC string of password, at
// PasswordParams: Hasher{}.Hash.
func HashPassword(password string) (string, error) { return Hasher{}.Hash(password) }

// Hasher hashes passwords with argon2id. The zero Hasher uses
// PasswordParams; the primary's front ends take one in their Config, so
// both sign-ups hash alike.
type Hasher struct {
	// Params are the argon2id costs; nil is PasswordParams.
	Params *argon2id.Params
}

// Hash returns the argon2id PHC string of password. A password outside
// the length bounds is ErrPasswordPolicy, the user's to fix; any other
// error is the server's: costs RFC 9106 does not allow (argon2 itself
// would panic on some, taking the request down with it) or a failure to
// hash.
func (h Hasher) Hash(password string) (string, error) {
	if len(password) < MinPasswordLen || len(password) > MaxPasswordLen {
		return "", ErrPasswordPolicy
	}
	p := h.Params
	if p == nil {
		p = PasswordParams
	}
	if err := checkParams(p); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	hash, err := argon2id.CreateHash(password, p)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return hash, nil
}

// checkParams refuses argon2id costs below RFC 9106's minimums (section
// 3.1): at least one pass and one lane, 8 KiB of memory a lane, an 8-byte
// salt and a 4-byte tag.
func checkParams(p *argon2id.Params) error {
	switch {
	case p.Iterations < 1:
		return fmt.Errorf("argon2id iterations %d: want at least 1", p.Iterations)
	case p.Parallelism < 1:
		return fmt.Errorf("argon2id parallelism %d: want at least 1", p.Parallelism)
	case p.Memory < 8*uint32(p.Parallelism):
		return fmt.Errorf("argon2id memory %d KiB: want at least 8 KiB a lane, %d", p.Memory, 8*uint32(p.Parallelism))
	case p.SaltLength < 8:
		return fmt.Errorf("argon2id salt length %d: want at least 8 bytes", p.SaltLength)
	case p.KeyLength < 4:
		return fmt.Errorf("argon2id key length %d: want at least 4 bytes", p.KeyLength)
	}
	return nil
}

// CheckPassword reports whether password matches hash, in constant time.
func CheckPassword(password, hash string) (bool, error) {
	if len(password) > MaxPasswordLen {
		return false, nil
	}
	return argon2id.ComparePasswordAndHash(password, hash)
}

// KeyPrefix starts every API key, so leaked keys are easy to scan for.
const KeyPrefix = "sf_"

// NewAPIKey returns a new API key: KeyPrefix and 32 random bytes, base64url.
func NewAPIKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// ErrMalformedKey is returned for a string that cannot be an API key.
var ErrMalformedKey = errors.New("malformed API key")

// HashAPIKey returns the SHA-256 under which a key is stored. A key is 256
// random bits, so a fast hash is as safe as a slow one and lets every API
// request be checked cheaply.
func HashAPIKey(key string) ([]byte, error) {
	if len(key) != len(KeyPrefix)+43 || key[:len(KeyPrefix)] != KeyPrefix {
		return nil, ErrMalformedKey
	}
	sum := sha256.Sum256([]byte(key))
	return sum[:], nil
}

// DisplayPrefix is the part of a key shown in listings to recognise it.
func DisplayPrefix(key string) string {
	if len(key) < len(KeyPrefix)+6 {
		return key
	}
	return key[:len(KeyPrefix)+6]
}
