package localfleet

import (
	"slices"
	"strings"
	"testing"
)

// TestPrimaryArgs: the primary app is told every other host of the fleet,
// so that links to them are refused, and trusts X-Forwarded-For from the
// balancer's host alone; -insecure-cookies only without the balancer.
func TestPrimaryArgs(t *testing.T) {
	f := &Fleet{cfg: Config{Proxies: 3, Subnet: "127.5.6", PrimaryArgs: []string{"-rate-login", "5/1m"}}}
	args := f.primaryArgs(f.PrimaryHost())
	flag := func(name string) string {
		i := slices.Index(args, name)
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("%s is not passed: %q", name, args)
		}
		return args[i+1]
	}
	hosts := strings.Split(flag("-fleet-hosts"), ",")
	for _, want := range []string{"127.5.6.2", "127.5.6.4", "127.5.6.3", "127.5.6.6", "127.5.6.7", "127.5.6.8", "127.5.6.11", "127.5.6.12", "127.5.6.13"} {
		if !slices.Contains(hosts, want) {
			t.Errorf("-fleet-hosts %q lacks %s", hosts, want)
		}
	}
	if got := flag("-trusted-proxies"); got != "127.5.6.4" {
		t.Errorf("-trusted-proxies %q, want the balancer's host 127.5.6.4", got)
	}
	if got := flag("-listen"); got != "127.5.6.2:8000" {
		t.Errorf("-listen %q", got)
	}
	if got := flag("-admin-listen"); got != "127.5.6.2:9091" {
		t.Errorf("-admin-listen %q, want the host's own address, port 9091", got)
	}
	if !slices.Equal(args[len(args)-2:], []string{"-rate-login", "5/1m"}) {
		t.Errorf("the config's PrimaryArgs do not come last, to override: %q", args)
	}
	if !slices.Contains(args, "-insecure-cookies") {
		t.Errorf("without a balancer the app serves plain HTTP, which needs -insecure-cookies: %q", args)
	}
	// Behind the balancer the app is HTTPS, with Secure cookies, and the
	// balancer's app address is a fleet host too.
	// The second instance, on proxy-01's host, refuses links to the
	// primary host.
	f.balanced = true
	args = f.primaryArgs(f.ProxyHost(0))
	if got := flag("-listen"); got != "127.5.6.11:8000" {
		t.Errorf("second instance's -listen %q", got)
	}
	if got := flag("-admin-listen"); got != "127.5.6.11:9091" {
		t.Errorf("second instance's -admin-listen %q", got)
	}
	if slices.Contains(args, "-insecure-cookies") {
		t.Errorf("behind the balancer, -insecure-cookies is passed: %q", args)
	}
	if got := flag("-app-base"); got != "https://127.5.6.5:8443" {
		t.Errorf("-app-base %q, want the balancer's HTTPS app address", got)
	}
	if hosts := strings.Split(flag("-fleet-hosts"), ","); !slices.Contains(hosts, "127.5.6.5") {
		t.Errorf("-fleet-hosts %q lacks the balancer's app address 127.5.6.5", hosts)
	}
}

// TestScrapeTargets: every proxy, app instance and the mapreduce daemon,
// under the monitoring role's job names, each with the token its
// /metrics answers to.
func TestScrapeTargets(t *testing.T) {
	f := &Fleet{cfg: Config{Proxies: 2, Subnet: "127.5.6"}, balanced: true}
	want := []ScrapeTarget{
		{"shortfleet_proxy", "proxy-01", "127.5.6.11:9090", "admin"},
		{"shortfleet_proxy", "proxy-02", "127.5.6.12:9090", "admin"},
		{"shortfleet_app", "db-main", "127.5.6.2:9091", "read"},
		{"shortfleet_app", "proxy-01", "127.5.6.11:9091", "read"},
		{"shortfleet_mapreduce", "mapreduce-01", "127.5.6.3:9100", "admin"},
	}
	if got := f.ScrapeTargets(); !slices.Equal(got, want) {
		t.Fatalf("scrape targets\n%v\nwant\n%v", got, want)
	}
	if got := f.AppAdminURLs(); !slices.Equal(got, []string{"http://127.5.6.2:9091", "http://127.5.6.11:9091"}) {
		t.Fatalf("app admin URLs %q", got)
	}
}
