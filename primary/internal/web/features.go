package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"shortfleet/primary/internal/linkreq"
	"shortfleet/primary/internal/store"
)

// formTime is how a datetime-local field sends a time; the UI shows and
// reads every time in UTC.
const formTime = "2006-01-02T15:04"

// parseFormTime reads a datetime-local value as UTC; "" is none.
func parseFormTime(v string) (*time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	for _, layout := range []string{formTime, "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, fmt.Errorf("expires_at %q is not a date and time such as 2030-01-31T18:00 (UTC)", v)
}

// parseFormMaxClicks reads max_clicks; "" is none.
func parseFormMaxClicks(v string) (*int64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("max_clicks %q is not a whole number", v)
	}
	return &n, nil
}

// readFeatures reads a link's options from the create form. Values are
// only parsed here; linkreq checks them as it does for the API.
func readFeatures(r *http.Request) (linkreq.FeaturesIn, error) {
	var in linkreq.FeaturesIn
	var err error
	if in.ExpiresAt, err = parseFormTime(r.PostFormValue("expires_at")); err != nil {
		return in, err
	}
	if in.MaxClicks, err = parseFormMaxClicks(r.PostFormValue("max_clicks")); err != nil {
		return in, err
	}
	if in.Rules, err = linkreq.ParseRulesText(r.PostFormValue("rules")); err != nil {
		return in, err
	}
	in.ForwardQuery = r.PostFormValue("forward_query") == "on"
	in.Password = r.PostFormValue("password")
	return in, nil
}

// readFeaturePatch reads the edit form, which shows every option: each is
// set to what the form holds, but for the password, which the form never
// shows: left blank it stays, unless remove_password is ticked.
func (s *Server) readFeaturePatch(r *http.Request, p *store.FeaturePatch) error {
	in, err := readFeatures(r)
	if err != nil {
		return err
	}
	if err := linkreq.CheckExpiry(in.ExpiresAt, time.Now()); err != nil {
		return err
	}
	if err := linkreq.CheckMaxClicks(in.MaxClicks); err != nil {
		return err
	}
	rules, err := linkreq.CheckRules(s.cfg.Policy, in.Rules)
	if err != nil {
		return err
	}
	p.SetExpiresAt, p.ExpiresAt = true, in.ExpiresAt
	p.SetMaxClicks, p.MaxClicks = true, in.MaxClicks
	p.ForwardQuery = &in.ForwardQuery
	p.SetRules, p.Rules = true, rules
	switch {
	case r.PostFormValue("remove_password") == "on":
		p.SetPassword = true
	case in.Password != "":
		h, err := linkreq.HashLinkPassword(in.Password)
		if err != nil {
			return err
		}
		p.SetPassword, p.PasswordHash = true, h
	}
	return nil
}

// stopText is the sentence the link page shows for why a link does not
// redirect.
func stopText(l store.Link) string {
	switch l.StoppedReason {
	case "":
		return ""
	case store.StopDisabled:
		return "Disabled by you."
	case store.StopExpired:
		return "Expired at " + l.ExpiresAt.Format("2006-01-02 15:04:05") + " UTC: visitors get 410 Gone."
	case store.StopMaxClicks:
		return "Stopped: it reached its cap of " + strconv.FormatInt(deref(l.MaxClicks), 10) + " clicks. Raise or remove the cap and re-enable it."
	default:
		return "Stopped: " + l.StoppedReason + "."
	}
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// editValues fills the edit form: with what a refused edit sent, so
// nothing typed is lost, else with the link's values.
func (d *linkData) editValues(r *http.Request, errMsg string) {
	if errMsg != "" && r.Method == http.MethodPost && r.PostFormValue("action") == "edit" {
		f := r.PostForm
		d.EditTarget, d.ExpiresValue, d.MaxClicksValue, d.RulesText = f.Get("target"), f.Get("expires_at"), f.Get("max_clicks"), f.Get("rules")
		d.ForwardQuery = f.Get("forward_query") == "on"
		return
	}
	l := d.Link
	d.EditTarget, d.RulesText, d.ForwardQuery = l.Target, linkreq.FormatRulesText(l.Rules), l.ForwardQuery
	if l.ExpiresAt != nil {
		d.ExpiresValue = l.ExpiresAt.Format(formTime)
	}
	if l.MaxClicks != nil {
		d.MaxClicksValue = strconv.FormatInt(*l.MaxClicks, 10)
	}
}
