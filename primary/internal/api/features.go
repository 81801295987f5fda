package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"shortfleet/primary/internal/linkreq"
	"shortfleet/primary/internal/store"
	sfsql "shortfleet/sql"
)

// maxLinkBody bounds the body of a link's creation or edit: above maxBody
// so that an oversized field (a password of a megabyte) reaches its own
// check and is refused with a 400 naming it, not a bare 413.
const maxLinkBody = 2 << 20

// featureFields are the issue 21 options of a link's creation.
type featureFields struct {
	ExpiresAt    *time.Time   `json:"expires_at,omitempty"`
	MaxClicks    *int64       `json:"max_clicks,omitempty"`
	ForwardQuery bool         `json:"forward_query,omitempty"`
	Rules        []sfsql.Rule `json:"rules,omitempty"`
	Password     string       `json:"password,omitempty"`
}

func (f featureFields) in() linkreq.FeaturesIn {
	return linkreq.FeaturesIn{ExpiresAt: f.ExpiresAt, MaxClicks: f.MaxClicks, ForwardQuery: f.ForwardQuery, Rules: f.Rules, Password: f.Password}
}

// optional is a PATCH field: Set when the key was sent, Value nil when it
// was sent as null, which clears the option.
type optional[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON is called for a key that is present, null included.
func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// featurePatchFields are the issue 21 options of a PATCH: null clears one.
type featurePatchFields struct {
	ExpiresAt    optional[time.Time]    `json:"expires_at"`
	MaxClicks    optional[int64]        `json:"max_clicks"`
	ForwardQuery *bool                  `json:"forward_query,omitempty"`
	Rules        optional[[]sfsql.Rule] `json:"rules"`
	Password     optional[string]       `json:"password"`
}

// patch checks the fields sent into p; a refusal's message names the field.
func (s *Server) featurePatch(w http.ResponseWriter, f featurePatchFields, p *store.FeaturePatch) bool {
	p.ForwardQuery = f.ForwardQuery
	if f.ExpiresAt.Set {
		if err := linkreq.CheckExpiry(f.ExpiresAt.Value, time.Now()); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return false
		}
		p.SetExpiresAt, p.ExpiresAt = true, f.ExpiresAt.Value
	}
	if f.MaxClicks.Set {
		if err := linkreq.CheckMaxClicks(f.MaxClicks.Value); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return false
		}
		p.SetMaxClicks, p.MaxClicks = true, f.MaxClicks.Value
	}
	if f.Rules.Set {
		var rs []sfsql.Rule
		if f.Rules.Value != nil {
			rs = *f.Rules.Value
		}
		checked, err := linkreq.CheckRules(s.cfg.Policy, rs)
		if err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return false
		}
		p.SetRules, p.Rules = true, checked
	}
	if f.Password.Set {
		pw := ""
		if f.Password.Value != nil {
			pw = *f.Password.Value
		}
		h, err := linkreq.HashLinkPassword(pw)
		if err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return false
		}
		p.SetPassword, p.PasswordHash = true, h
	}
	return true
}
