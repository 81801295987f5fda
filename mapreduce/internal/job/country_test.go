package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"shortfleet/logfmt"
	"shortfleet/mapreduce/internal/aggregate/aggregatetest"
	"shortfleet/mapreduce/internal/dims"
	"shortfleet/mapreduce/internal/mrtest"
	"shortfleet/provisioning/settings"
	sfsql "shortfleet/sql"
)

// TestDefaultCountryDatabase runs the real job with the country database
// it uses by default (ip-location-db's, installed by provisioning/deps.sh,
// which make test runs first) over segments the proxies' log writer wrote
// with well-known public addresses, and reads their countries back from
// Postgres: the Countries table is filled out of the box.
func TestDefaultCountryDatabase(t *testing.T) {
	g := settings.LoadGeoIP()
	if dims.DefaultGeoIPPath != g.Path {
		t.Fatalf("mapreduce's default database %s, provisioning/settings/geoip.json installs %s", dims.DefaultGeoIPPath, g.Path)
	}
	data, err := os.ReadFile(g.Path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the country database %s is missing: install it with provisioning/deps.sh (as root; make test runs it)", g.Path)
	}
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != g.SHA256 {
		t.Fatalf("%s has sha256 %x, geoip.json pins %s: run provisioning/deps.sh again", g.Path, sum, g.SHA256)
	}

	// One link per address, so each country is read back on its own.
	addrs := []struct {
		addr, country string
	}{
		{"8.8.8.8", "US"},         // Google, ARIN
		{"1.1.1.1", "AU"},         // APNIC's research prefix, lent to Cloudflare
		{"193.0.6.139", "NL"},     // RIPE NCC, Amsterdam
		{"2001:67c:2e8::2", "NL"}, // RIPE NCC over IPv6
		{"202.12.29.205", "AU"},   // APNIC, Brisbane
		{"133.1.1.1", "JP"},       // 133/8, Japan's universities (JPNIC)
		{"::ffff:193.0.6.139", "NL"},
		{"192.0.2.1", dims.UnknownCountry}, // documentation range: in no registry
	}
	ctx := context.Background()
	db := setupDB(t)
	p := newProxyLogs(t, "proxy-a")
	var recs []logfmt.Record
	for i, a := range addrs {
		r := aggregatetest.Click(t0.Add(time.Duration(i)*time.Second), int64(i+1), 302)
		r.ClientAddr = []byte(a.addr)
		recs = append(recs, r)
	}
	p.write(nil, recs...)
	j, err := New(Config{Proxies: []string{p.Srv.URL}, Token: mrtest.Token,
		Dims: dims.Config{GeoIPPath: dims.DefaultGeoIPPath, Salt: []byte("job-test-salt-0123456789")}}, mrtest.Quiet, db)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if res, err := j.Run(ctx); err != nil || res.Clicks != int64(len(addrs)) {
		t.Fatalf("run %+v, %v; want %d clicks", res, err, len(addrs))
	}
	for i, a := range addrs {
		d := dailyRow(t, db, int64(i+1), t0)
		if d.dims[sfsql.DimCountry][a.country] != 1 {
			t.Errorf("%s: countries %v, want %s", a.addr, d.dims[sfsql.DimCountry], a.country)
		}
	}
}
