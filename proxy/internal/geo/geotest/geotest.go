// Package geotest writes small MaxMind-format country databases for
// tests, in either record layout the proxy reads.
package geotest

import (
	"bytes"
	"fmt"
	"net"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Layouts of a country record.
const (
	// MaxMind is GeoLite2 Country's {"country": {"iso_code": "FR"}}.
	MaxMind = "maxmind"
	// Whois is ip-location-db's geo-whois-asn-country {"country_code": "FR"}.
	Whois = "whois"
)

// Build returns a database mapping each CIDR to its country code; an empty
// code writes a record without a country.
func Build(layout string, networks map[string]string) ([]byte, error) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "shortfleet-test-country", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		return nil, fmt.Errorf("new tree: %w", err)
	}
	for cidr, cc := range networks {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", cidr, err)
		}
		rec := mmdbtype.Map{"continent": mmdbtype.String("xx")}
		switch {
		case cc == "":
		case layout == MaxMind:
			rec = mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}
		default:
			rec = mmdbtype.Map{"country_code": mmdbtype.String(cc)}
		}
		if err := tree.Insert(n, rec); err != nil {
			return nil, fmt.Errorf("insert %s: %w", cidr, err)
		}
	}
	var b bytes.Buffer
	if _, err := tree.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("write database: %w", err)
	}
	return b.Bytes(), nil
}
