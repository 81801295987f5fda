package csvio

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"shortfleet/primary/internal/store"
)

func TestParseBulk(t *testing.T) {
	in := "target,alias,redirect_type\nhttps://a.example/,spring-sale,301\nhttps://b.example/\n\n\"https://c.example/,x\",,308\nhttps://d.example/,a,b,c,d\nhttps://e.example/,,three\n"
	rows, errs := ParseBulk(strings.NewReader(in))
	if len(rows) != 3 || rows[0].Alias != "spring-sale" || rows[0].RedirectType != 301 || rows[2].Target != "https://c.example/,x" || rows[2].RedirectType != 308 {
		t.Fatalf("rows %+v", rows)
	}
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "line 6") || !strings.Contains(errs[1].Error(), "line 7") {
		t.Fatalf("errors %v", errs)
	}
	big := strings.Repeat("https://x.example/\n", MaxRows+1)
	if _, errs := ParseBulk(strings.NewReader(big)); len(errs) == 0 {
		t.Fatal("an import over MaxRows was accepted")
	}
}

func TestWriteLinksDefusesFormulas(t *testing.T) {
	var b bytes.Buffer
	WriteLinks(&b, "https://sho.rt", []store.Link{{Code: "abc1234", Alias: "=HYPERLINK(1)", Target: "https://x.example/", CreatedAt: time.Unix(0, 0)}})
	if !strings.Contains(b.String(), "'=HYPERLINK(1)") {
		t.Fatalf("formula not defused: %s", b.String())
	}
}

func FuzzParseBulk(f *testing.F) {
	f.Add("target\nhttps://a.example/,alias,302\n")
	f.Add("\"unterminated\n")
	f.Add("a,b,c,d\n,,\n")
	f.Fuzz(func(t *testing.T, in string) {
		rows, _ := ParseBulk(strings.NewReader(in))
		if len(rows) > MaxRows {
			t.Fatalf("%d rows", len(rows))
		}
		for _, r := range rows {
			if r.Line < 1 {
				t.Fatalf("row without a line number: %+v", r)
			}
		}
	})
}
