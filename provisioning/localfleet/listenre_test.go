package localfleet

import "testing"

// TestListenLine: the address an app reports is taken whether it serves
// plain HTTP or HTTPS of its own (the primary with -tls-cert), under the
// listener's label; a line that is not a listening report is not.
func TestListenLine(t *testing.T) {
	a := newApp("t", "", nil, nil, "", nil)
	for _, l := range []string{
		`time=2025-01-01T00:00:00Z level=INFO msg="listening on http://127.0.0.2:9000" app=proxy listener=admin`,
		`time=2025-01-01T00:00:00Z level=INFO msg="listening on https://127.0.0.2:8000" app=primary listener=http`,
		`time=2025-01-01T00:00:00Z level=INFO msg="listening on ftp://127.0.0.2:21" app=x listener=ftp`,
	} {
		a.onLine(l)
	}
	want := map[string]string{"admin": "http://127.0.0.2:9000", "http": "https://127.0.0.2:8000"}
	if len(a.urls) != len(want) || a.urls["admin"] != want["admin"] || a.urls["http"] != want["http"] {
		t.Fatalf("listeners %v, want %v", a.urls, want)
	}
}
