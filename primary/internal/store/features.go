package store

import (
	"encoding/json"
	"fmt"
	"time"

	sfsql "shortfleet/sql"
)

// Features are a link's issue 21 options as its owner sees them.
type Features struct {
	// ExpiresAt is when the link stops redirecting (410 Gone); nil: never.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// MaxClicks is the click count at which the stats job disables the
	// link; nil: no cap.
	MaxClicks *int64 `json:"max_clicks,omitempty"`
	// ForwardQuery appends the short URL's query string to the target's.
	ForwardQuery bool `json:"forward_query"`
	// Rules are the redirect rules, first match wins.
	Rules []sfsql.Rule `json:"rules,omitempty"`
	// PasswordProtected says the link asks for a password; the password
	// itself is never shown, only its hash is stored.
	PasswordProtected bool `json:"password_protected"`
	// StoppedReason says why the link does not redirect: "disabled" by its
	// owner, "expired" at ExpiresAt, "max_clicks" reached, or a reason the
	// system recorded; empty while it redirects.
	StoppedReason string `json:"stopped_reason,omitempty"`
	stopReason    string // links.stop_reason as stored
}

// NewFeatures are the options a link is created or patched with.
type NewFeatures struct {
	ExpiresAt    *time.Time
	MaxClicks    *int64
	ForwardQuery bool
	Rules        []sfsql.Rule
	// PasswordHash is the argon2id PHC string; empty: no password.
	PasswordHash string
}

// Stop reasons stored in links.stop_reason, or derived.
const (
	StopDisabled  = "disabled"
	StopExpired   = "expired"
	StopMaxClicks = "max_clicks"
)

// featureCols are Features's columns of links l, in dests's order.
const featureCols = `l.expires_at, l.max_clicks, l.forward_query, l.rules, l.password_hash IS NOT NULL, coalesce(l.stop_reason, '')`

// featureScan receives featureCols.
type featureScan struct {
	f     *Features
	rules []byte
}

func (s *featureScan) dests(f *Features) []any {
	s.f = f
	return []any{&f.ExpiresAt, &f.MaxClicks, &f.ForwardQuery, &s.rules, &f.PasswordProtected, &f.stopReason}
}

// finish decodes the rules and says why the link is stopped, if it is.
func (s *featureScan) finish(disabled bool, now time.Time) error {
	f := s.f
	rs, err := sfsql.ParseRules(s.rules)
	if err != nil {
		return err
	}
	f.Rules = rs
	if f.ExpiresAt != nil {
		t := f.ExpiresAt.UTC()
		f.ExpiresAt = &t
	}
	switch {
	case disabled && f.stopReason != "":
		f.StoppedReason = f.stopReason
	case disabled:
		f.StoppedReason = StopDisabled
	case f.ExpiresAt != nil && !now.Before(*f.ExpiresAt):
		f.StoppedReason = StopExpired
	}
	return nil
}

// rulesJSON is rules as stored: NULL for none.
func rulesJSON(rs []sfsql.Rule) (*string, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(rs)
	if err != nil {
		return nil, fmt.Errorf("encode rules: %w", err)
	}
	s := string(b)
	return &s, nil
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// FeaturePatch changes a link's options; a field left unset stays.
type FeaturePatch struct {
	SetExpiresAt bool
	ExpiresAt    *time.Time // nil with SetExpiresAt: no expiry
	SetMaxClicks bool
	MaxClicks    *int64
	ForwardQuery *bool
	SetRules     bool
	Rules        []sfsql.Rule
	SetPassword  bool
	PasswordHash string // empty with SetPassword: no password
}

// featureSet is the SET list of FeaturePatch, its arguments from $5 on
// (args's order). Re-enabling a link ($4 false) clears the reason the
// system stopped it.
const featureSet = `expires_at = CASE WHEN $5 THEN $6 ELSE expires_at END,
		max_clicks = CASE WHEN $7 THEN $8 ELSE max_clicks END,
		forward_query = coalesce($9, forward_query),
		rules = CASE WHEN $10 THEN $11::jsonb ELSE rules END,
		password_hash = CASE WHEN $12 THEN $13 ELSE password_hash END,
		stop_reason = CASE WHEN $4 = false THEN NULL ELSE stop_reason END`

func (p FeaturePatch) args() []any {
	rules, _ := rulesJSON(p.Rules) // []Rule always encodes
	return []any{p.SetExpiresAt, p.ExpiresAt, p.SetMaxClicks, p.MaxClicks, p.ForwardQuery,
		p.SetRules, rules, p.SetPassword, nullIfEmpty(p.PasswordHash)}
}

// featureArrays are NewFeatures column by column, for one INSERT of many
// links.
type featureArrays struct {
	expires   []*time.Time
	maxClicks []*int64
	forward   []bool
	rules     []*string
	passwords []*string
}

func newFeatureArrays(n int) *featureArrays {
	return &featureArrays{expires: make([]*time.Time, n), maxClicks: make([]*int64, n), forward: make([]bool, n),
		rules: make([]*string, n), passwords: make([]*string, n)}
}

func (a *featureArrays) set(i int, f NewFeatures) error {
	r, err := rulesJSON(f.Rules)
	if err != nil {
		return err
	}
	a.expires[i], a.maxClicks[i], a.forward[i], a.rules[i], a.passwords[i] = f.ExpiresAt, f.MaxClicks, f.ForwardQuery, r, nullIfEmpty(f.PasswordHash)
	return nil
}

// shown is f as the owner sees a link just created with it.
func (f NewFeatures) shown() Features {
	out := Features{MaxClicks: f.MaxClicks, ForwardQuery: f.ForwardQuery, Rules: f.Rules, PasswordProtected: f.PasswordHash != ""}
	if f.ExpiresAt != nil {
		t := f.ExpiresAt.UTC().Truncate(time.Microsecond) // what Postgres keeps
		out.ExpiresAt = &t
	}
	return out
}
