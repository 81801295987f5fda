package sql

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rule kinds: what part of a request a redirect rule looks at.
const (
	// RuleDevice matches the client's device family from its User-Agent:
	// "ios", "android" or "desktop" (see DeviceOf).
	RuleDevice = "device"
	// RuleLanguage matches the primary subtag of the first language of
	// Accept-Language, e.g. "fr" for "fr-CH,fr;q=0.9".
	RuleLanguage = "language"
	// RuleCountry matches the ISO 3166-1 alpha-2 code of the country of the
	// client's address, e.g. "FR".
	RuleCountry = "country"
)

// Devices are the values a device rule may name.
var Devices = []string{"ios", "android", "desktop"}

// MaxRules bounds a link's rules: the proxy evaluates them all on a
// request that matches none.
const MaxRules = 16

// Rule is one redirect rule of a link: when a request's Kind is Value, it
// goes to Target instead of the link's target. A link's rules are tried in
// order; the first that matches wins.
type Rule struct {
	Kind   string `json:"kind"`
	Value  string `json:"value"`
	Target string `json:"target"`
}

// CheckRule validates a rule's kind and value and puts the value in its
// canonical case (devices and languages lower, countries upper). It does
// not check the target: the primary's target policy does.
func CheckRule(r Rule) (Rule, error) {
	switch r.Kind {
	case RuleDevice:
		r.Value = strings.ToLower(r.Value)
		if !slices.Contains(Devices, r.Value) {
			return r, fmt.Errorf("device %q is not one of ios, android, desktop", r.Value)
		}
	case RuleLanguage:
		r.Value = strings.ToLower(r.Value)
		if !validLanguage(r.Value) {
			return r, fmt.Errorf("language %q is not a language code of 2 or 3 letters such as \"fr\"", r.Value)
		}
	case RuleCountry:
		r.Value = strings.ToUpper(r.Value)
		if !ValidCountry(r.Value) {
			return r, fmt.Errorf("country %q is not an ISO 3166-1 alpha-2 country code such as \"FR\"", r.Value)
		}
	default:
		return r, fmt.Errorf("rule kind %q is not one of device, language, country", r.Kind)
	}
	return r, nil
}

// validLanguage accepts a primary language subtag (BCP 47): 2 or 3
// lower-case letters. A rule names the language, not a region of it,
// because the proxy compares it with the first subtag of Accept-Language.
func validLanguage(v string) bool {
	if len(v) < 2 || len(v) > 3 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 'a' || v[i] > 'z' {
			return false
		}
	}
	return true
}

// ValidCountry reports whether cc is an assigned ISO 3166-1 alpha-2 code,
// upper case.
func ValidCountry(cc string) bool {
	if len(cc) != 2 {
		return false
	}
	for i := 0; i < len(isoCountries); i += 2 {
		if isoCountries[i:i+2] == cc {
			return true
		}
	}
	return false
}

// isoCountries are the 249 officially assigned ISO 3166-1 alpha-2 codes,
// two letters each, in order.
const isoCountries = "AD" + "AE" + "AF" + "AG" + "AI" + "AL" + "AM" + "AO" + "AQ" + "AR" + "AS" + "AT" + "AU" + "AW" + "AX" + "AZ" +
	"BA" + "BB" + "BD" + "BE" + "BF" + "BG" + "BH" + "BI" + "BJ" + "BL" + "BM" + "BN" + "BO" + "BQ" + "BR" + "BS" + "BT" + "BV" + "BW" + "BY" + "BZ" +
	"CA" + "CC" + "CD" + "CF" + "CG" + "CH" + "CI" + "CK" + "CL" + "CM" + "CN" + "CO" + "CR" + "CU" + "CV" + "CW" + "CX" + "CY" + "CZ" +
	"DE" + "DJ" + "DK" + "DM" + "DO" + "DZ" +
	"EC" + "EE" + "EG" + "EH" + "ER" + "ES" + "ET" +
	"FI" + "FJ" + "FK" + "FM" + "FO" + "FR" +
	"GA" + "GB" + "GD" + "GE" + "GF" + "GG" + "GH" + "GI" + "GL" + "GM" + "GN" + "GP" + "GQ" + "GR" + "GS" + "GT" + "GU" + "GW" + "GY" +
	"HK" + "HM" + "HN" + "HR" + "HT" + "HU" +
	"ID" + "IE" + "IL" + "IM" + "IN" + "IO" + "IQ" + "IR" + "IS" + "IT" +
	"JE" + "JM" + "JO" + "JP" +
	"KE" + "KG" + "KH" + "KI" + "KM" + "KN" + "KP" + "KR" + "KW" + "KY" + "KZ" +
	"LA" + "LB" + "LC" + "LI" + "LK" + "LR" + "LS" + "LT" + "LU" + "LV" + "LY" +
	"MA" + "MC" + "MD" + "ME" + "MF" + "MG" + "MH" + "MK" + "ML" + "MM" + "MN" + "MO" + "MP" + "MQ" + "MR" + "MS" + "MT" + "MU" + "MV" + "MW" + "MX" + "MY" + "MZ" +
	"NA" + "NC" + "NE" + "NF" + "NG" + "NI" + "NL" + "NO" + "NP" + "NR" + "NU" + "NZ" +
	"OM" +
	"PA" + "PE" + "PF" + "PG" + "PH" + "PK" + "PL" + "PM" + "PN" + "PR" + "PS" + "PT" + "PW" + "PY" +
	"QA" +
	"RE" + "RO" + "RS" + "RU" + "RW" +
	"SA" + "SB" + "SC" + "SD" + "SE" + "SG" + "SH" + "SI" + "SJ" + "SK" + "SL" + "SM" + "SN" + "SO" + "SR" + "SS" + "ST" + "SV" + "SX" + "SY" + "SZ" +
	"TC" + "TD" + "TF" + "TG" + "TH" + "TJ" + "TK" + "TL" + "TM" + "TN" + "TO" + "TR" + "TT" + "TV" + "TW" + "TZ" +
	"UA" + "UG" + "UM" + "US" + "UY" + "UZ" +
	"VA" + "VC" + "VE" + "VG" + "VI" + "VN" + "VU" +
	"WF" + "WS" +
	"YE" + "YT" +
	"ZA" + "ZM" + "ZW"

// ParseRules reads a links.rules value as stored; empty or null is none.
func ParseRules(raw []byte) ([]Rule, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var rs []Rule
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("read link rules: %w", err)
	}
	return rs, nil
}

// LinkFeatures are what a redirect needs of a link's issue 21 options.
// A plain link has them all zero.
type LinkFeatures struct {
	// ExpiresAt is when the link starts answering 410; nil: never.
	ExpiresAt *time.Time
	// ForwardQuery appends the short URL's query string to the target's.
	ForwardQuery bool
	// Rules is the stored JSON array of redirect rules; nil: none.
	Rules []byte
	// PasswordHash is the argon2id PHC string of the link's password;
	// empty: none.
	PasswordHash string
}

// featureColumns are LinkFeatures's columns in links, in featureDests's
// order, for the proxies' lookups.
const featureColumns = `expires_at, forward_query, rules, coalesce(password_hash, '')`

func (l *Link) featureDests() []any {
	return []any{&l.ExpiresAt, &l.ForwardQuery, &l.Rules, &l.PasswordHash}
}
