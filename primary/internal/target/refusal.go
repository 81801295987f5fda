package target

import "errors"

// Refusal says why the policy refuses a target it may have allowed when
// the link was made (a domain blocked since, say), in words for the
// link's owner; empty if it allows it. The admins' re-apply of the
// blocklist takes down each link it refuses with this as the reason.
func (p *Policy) Refusal(raw string) string {
	_, err := p.Check(raw)
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return "blocklist: " + e.Reason
	}
	return "blocklist: " + err.Error()
}
