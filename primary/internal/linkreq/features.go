package linkreq

import (
	"errors"
	"fmt"
	"time"

	"github.com/alexedwards/argon2id"

	"shortfleet/primary/internal/auth"
	"shortfleet/primary/internal/store"
	"shortfleet/primary/internal/target"
	sfsql "shortfleet/sql"
)

// LinkPasswordParams are the argon2id costs of link passwords. A proxy
// checks one on every visit to a protected link, so they are OWASP's
// cheapest-memory recommended set (9 MiB, 4 passes, 1 lane: as hard to
// brute-force offline as account passwords' 19 MiB and 2 passes) rather
// than anything costlier; online guessing is held back by the proxy's
// per-link and per-address limit, and its checks run on a bounded pool so
// they cannot starve redirects.
var LinkPasswordParams = &argon2id.Params{Memory: 9 * 1024, Iterations: 4, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// linkHasher hashes link passwords with the accounts' code
// (auth.Hasher: the same length policy and parameter checks).
var linkHasher = auth.Hasher{Params: LinkPasswordParams}

// MaxClicksLimit bounds max_clicks: beyond it no cap would ever be reached.
const MaxClicksLimit = 1 << 50

// FeaturesIn are a link's issue 21 options as a front end read them.
type FeaturesIn struct {
	ExpiresAt    *time.Time
	MaxClicks    *int64
	ForwardQuery bool
	Rules        []sfsql.Rule
	Password     string
}

// CheckFeatures validates the options of a link to create, naming the
// field that is wrong, and hashes its password.
func CheckFeatures(p *target.Policy, in FeaturesIn, now time.Time) (store.NewFeatures, error) {
	if err := CheckExpiry(in.ExpiresAt, now); err != nil {
		return store.NewFeatures{}, err
	}
	if err := CheckMaxClicks(in.MaxClicks); err != nil {
		return store.NewFeatures{}, err
	}
	rules, err := CheckRules(p, in.Rules)
	if err != nil {
		return store.NewFeatures{}, err
	}
	hash, err := HashLinkPassword(in.Password)
	if err != nil {
		return store.NewFeatures{}, err
	}
	return store.NewFeatures{ExpiresAt: in.ExpiresAt, MaxClicks: in.MaxClicks, ForwardQuery: in.ForwardQuery, Rules: rules, PasswordHash: hash}, nil
}

// CheckExpiry refuses an expiry that is not in the future: a link that
// would be dead on arrival is a mistake (a time zone, a year).
func CheckExpiry(t *time.Time, now time.Time) error {
	if t != nil && !t.After(now) {
		return fmt.Errorf("expires_at %s is in the past: give a time after %s", t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckMaxClicks refuses a cap below 1 or absurdly large.
func CheckMaxClicks(n *int64) error {
	if n != nil && (*n < 1 || *n > MaxClicksLimit) {
		return fmt.Errorf("max_clicks %d is not between 1 and %d", *n, int64(MaxClicksLimit))
	}
	return nil
}

// CheckRules validates redirect rules: at most sfsql.MaxRules, each a
// known kind with a valid value and a target the policy allows.
func CheckRules(p *target.Policy, rs []sfsql.Rule) ([]sfsql.Rule, error) {
	if len(rs) > sfsql.MaxRules {
		return nil, fmt.Errorf("rules: %d rules, at most %d", len(rs), sfsql.MaxRules)
	}
	out := make([]sfsql.Rule, 0, len(rs))
	for i, r := range rs {
		c, err := sfsql.CheckRule(r)
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
		if c.Target, err = p.Check(r.Target); err != nil {
			return nil, fmt.Errorf("rules[%d].target: %w", i, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// HashLinkPassword hashes a link's password; "" is no password.
func HashLinkPassword(pw string) (string, error) {
	if pw == "" {
		return "", nil
	}
	h, err := linkHasher.Hash(pw)
	if errors.Is(err, auth.ErrPasswordPolicy) {
		return "", fmt.Errorf("password: a link's %w", err)
	}
	return h, err
}
