package limit

import (
	"testing"
	"time"
)

// hourly is a rule that refills no token while a test runs.
func hourly(burst int) *Limiter { return New(Rule{Every: time.Hour, Burst: burst}) }

// TestCreateAllOrNone: creation is charged per link to the account and the
// address together; a refusal by either costs the other nothing, and a
// request over a burst can never pass.
func TestCreateAllOrNone(t *testing.T) {
	l := Limits{CreatePerAccount: hourly(4), CreatePerAddr: hourly(6)}
	for i, step := range []struct {
		addr  string
		uid   int64
		n     int
		what  string // "" when allowed
		never bool
	}{
		{"10.0.0.1", 1, 3, "", false},
		{"10.0.0.1", 1, 2, "links created by your account", false}, // 1 left
		{"10.0.0.1", 2, 3, "", false},                              // the address was not charged above
		{"10.0.0.1", 3, 1, "links created from your address", false},
		{"10.0.0.2", 3, 4, "", false}, // the account was not charged above
		{"10.0.0.3", 4, 5, "links created by your account", true},
		{"10.0.0.3", 4, 4, "", false},
		{"10.0.0.3", 5, 3, "links created from your address", false}, // 2 left
		{"10.0.0.3", 5, 0, "", false},                                // a request costs at least one
		{"10.0.0.3", 5, 2, "links created from your address", false},
	} {
		no := l.Create(step.addr, step.uid, step.n)
		switch {
		case step.what == "" && no != nil:
			t.Fatalf("step %d: refused (%+v), want allowed", i, *no)
		case step.what == "":
		case no == nil:
			t.Fatalf("step %d: allowed, want refused for %s", i, step.what)
		case no.What != step.what || no.Never != step.never:
			t.Fatalf("step %d: refused for %q, never %v; want %q, never %v", i, no.What, no.Never, step.what, step.never)
		case no.Never && no.Max != 4:
			t.Fatalf("step %d: max %d, want the account's burst 4", i, no.Max)
		case !no.Never && (no.RetryAfter <= 0 || no.RetryAfter > time.Duration(step.n)*time.Hour):
			t.Fatalf("step %d: retry after %v, want within %d h", i, no.RetryAfter, step.n)
		}
	}
	// Each refusal is counted once, against the limiter that refused it
	// (what /metrics shows as shortfleet_app_rate_limited_total).
	got := l.Refusals()
	for name, want := range map[string]uint64{"create_account": 2, "create_addr": 3, "login_addr": 0, "signup_addr": 0} {
		if got := got[name]; got != want {
			t.Errorf("limiter %s refused %d, want %d", name, got, want)
		}
	}
}

// TestLoginPerAddressAndAccount: log-in attempts are counted per address
// and per account, each on its own.
func TestLoginPerAddressAndAccount(t *testing.T) {
	l := Limits{LoginPerAddr: hourly(3), LoginPerAccount: hourly(2)}
	for i, step := range []struct {
		addr, email, what string
	}{
		{"10.0.0.1", "a@example.com", ""},
		{"10.0.0.2", "a@example.com", ""},
		{"10.0.0.3", "a@example.com", "log-in attempts for this account"},
		{"10.0.0.1", "b@example.com", ""},
		{"10.0.0.1", "c@example.com", ""},
		{"10.0.0.1", "d@example.com", "log-in attempts from your address"},
		{"10.0.0.3", "d@example.com", ""},
	} {
		no := l.Login(step.addr, step.email)
		got := ""
		if no != nil {
			got = no.What
		}
		if got != step.what {
			t.Fatalf("step %d (%s, %s): refused for %q, want %q", i, step.addr, step.email, got, step.what)
		}
	}
}

func TestNoLimits(t *testing.T) {
	var l Limits
	for range 100 {
		if l.Signup("10.0.0.1") != nil || l.Login("10.0.0.1", "a@example.com") != nil || l.Create("10.0.0.1", 1, 1_000_000) != nil {
			t.Fatal("a nil limiter refused")
		}
	}
}
