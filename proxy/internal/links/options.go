package links

import (
	sfsql "shortfleet/sql"
)

// Options are a link's issue 21 options as the proxy keeps them: parsed
// once when the link is looked up, so a cached redirect only compares.
type Options struct {
	// ExpiresAt is the Unix time in ns from which the link answers 410;
	// 0: never.
	ExpiresAt int64
	// ForwardQuery appends the short URL's query string to the target's.
	ForwardQuery bool
	// Rules are tried in order; the first that matches gives the target.
	Rules []Rule
	// PasswordHash is the argon2id PHC string of the link's password;
	// empty: none.
	PasswordHash string
	// BadRules is set when the stored rules did not parse (the primary
	// checks them, so only a hand-edited row gets here): the link then
	// redirects to its own target, and the proxy counts it.
	BadRules bool
}

// RuleKind is what a rule looks at.
type RuleKind uint8

// Rule kinds.
const (
	RuleDevice RuleKind = iota + 1
	RuleLanguage
	RuleCountry
)

// Rule is a redirect rule ready to compare: Value is lower case for
// devices and languages, upper case for countries (sfsql.CheckRule).
type Rule struct {
	Kind   RuleKind
	Value  string
	Target string
}

// optionsOf returns nil for a plain link.
func optionsOf(f sfsql.LinkFeatures) *Options {
	if f.ExpiresAt == nil && !f.ForwardQuery && len(f.Rules) == 0 && f.PasswordHash == "" {
		return nil
	}
	o := &Options{ForwardQuery: f.ForwardQuery, PasswordHash: f.PasswordHash}
	if f.ExpiresAt != nil {
		o.ExpiresAt = f.ExpiresAt.UnixNano()
		if o.ExpiresAt == 0 { // the epoch itself: long past, but 0 means never
			o.ExpiresAt = 1
		}
	}
	rs, err := sfsql.ParseRules(f.Rules)
	for _, r := range rs {
		c, cerr := sfsql.CheckRule(r)
		if cerr != nil || r.Target == "" {
			err = cerr
			continue
		}
		var k RuleKind
		switch c.Kind {
		case sfsql.RuleDevice:
			k = RuleDevice
		case sfsql.RuleLanguage:
			k = RuleLanguage
		case sfsql.RuleCountry:
			k = RuleCountry
		}
		o.Rules = append(o.Rules, Rule{Kind: k, Value: c.Value, Target: c.Target})
	}
	o.BadRules = err != nil
	return o
}

// Expired reports whether the link has expired at now, a Unix time in ns.
func (o *Options) Expired(now int64) bool { return o != nil && o.ExpiresAt != 0 && now >= o.ExpiresAt }

// optionsOverhead is what an Options costs beyond its strings: the struct,
// its rules slice and a rule's string headers.
const optionsOverhead = 96

// weight is the bytes o holds, for the cache's bound; nil holds none.
func (o *Options) weight() uint32 {
	if o == nil {
		return 0
	}
	n := optionsOverhead + len(o.PasswordHash)
	for _, r := range o.Rules {
		n += 48 + len(r.Value) + len(r.Target)
	}
	return uint32(n)
}
