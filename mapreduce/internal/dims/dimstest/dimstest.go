// Package dimstest writes a small MaxMind-format GeoIP database for tests:
// the test networks of RFC 5737 and RFC 3849 mapped to countries.
package dimstest

import (
	"net"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Networks maps each test network to the country the database gives it.
var Networks = map[string]string{
	"192.0.2.0/24":    "CH",
	"198.51.100.0/24": "JP",
	"203.0.113.0/24":  "BR",
	"2001:db8::/32":   "DE",
}

// WriteGeoDB writes the database to path, in MaxMind's record layout:
// {"country": {"iso_code": "CH"}}.
func WriteGeoDB(path string) error {
	return write(path, func(cc string) mmdbtype.DataType {
		return mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}
	})
}

// WriteFlatGeoDB writes the database to path in ip-location-db's record
// layout, the default database's: {"country_code": "CH"}.
func WriteFlatGeoDB(path string) error {
	return write(path, func(cc string) mmdbtype.DataType {
		return mmdbtype.Map{"country_code": mmdbtype.String(cc)}
	})
}

func write(path string, record func(cc string) mmdbtype.DataType) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "shortfleet-test-country", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		return err
	}
	for cidr, cc := range Networks {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return err
		}
		if err := tree.Insert(n, record(cc)); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
