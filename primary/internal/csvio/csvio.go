// Package csvio reads the CSV of bulk link creation and writes the CSV
// exports of links and stats.
package csvio

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"shortfleet/primary/internal/store"
)

// MaxRows bounds one bulk import.
const MaxRows = 10_000

// Row is one link to create: target, and optionally alias and redirect
// type.
type Row struct {
	Line         int
	Target       string
	Alias        string
	RedirectType int
}

// ParseBulk reads "target[,alias[,redirect_type]]" lines. A first line
// whose first field is "target" is a header and is skipped. It returns
// every problem, line by line, rather than the first.
func ParseBulk(r io.Reader) ([]Row, []error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var rows []Row
	var errs []error
	for n := 1; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line := n
		if err == nil {
			line, _ = cr.FieldPos(0) // the file's line: blank lines are skipped
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("record %d: %v", n, err))
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				continue
			}
			break
		}
		if n == 1 && len(rec) > 0 && strings.EqualFold(strings.TrimSpace(rec[0]), "target") {
			continue
		}
		if len(rec) == 0 || (len(rec) == 1 && strings.TrimSpace(rec[0]) == "") {
			continue
		}
		if len(rec) > 3 {
			errs = append(errs, fmt.Errorf("line %d: %d fields, want target[,alias[,redirect_type]]", line, len(rec)))
			continue
		}
		row := Row{Line: line, Target: strings.TrimSpace(rec[0])}
		if len(rec) > 1 {
			row.Alias = strings.TrimSpace(rec[1])
		}
		if len(rec) > 2 && strings.TrimSpace(rec[2]) != "" {
			n, err := strconv.Atoi(strings.TrimSpace(rec[2]))
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d: redirect type %q is not a number", line, rec[2]))
				continue
			}
			row.RedirectType = n
		}
		rows = append(rows, row)
		if len(rows) > MaxRows {
			return nil, append(errs, fmt.Errorf("more than %d links in one import", MaxRows))
		}
	}
	return rows, errs
}

// safe defuses a cell a spreadsheet would run as a formula.
func safe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteLinks writes links as CSV, a link's tags space-separated in the
// last column.
func WriteLinks(w io.Writer, shortBase string, links []store.Link) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"code", "short_url", "alias", "target", "redirect_type", "disabled", "created_at", "clicks", "tags"})
	for _, l := range links {
		// Tags hold no spaces (linkreq.ParseTag): space-separated in one cell.
		cw.Write([]string{l.Code, shortBase + "/" + l.Code, safe(l.Alias), safe(l.Target), strconv.Itoa(l.RedirectType),
			strconv.FormatBool(l.Disabled), l.CreatedAt.UTC().Format(time.RFC3339), strconv.FormatInt(l.Clicks, 10),
			safe(strings.Join(l.Tags, " "))})
	}
	cw.Flush()
	return cw.Error()
}

// WriteStats writes a link's stats as CSV: the series, then the top values
// of each dimension.
func WriteStats(w io.Writer, st store.Stats, dims []string) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"section", "key", "clicks", "bots"})
	for _, p := range st.Series {
		cw.Write([]string{st.Granularity, p.Time.UTC().Format(time.RFC3339), strconv.FormatInt(p.Clicks, 10), strconv.FormatInt(p.Bots, 10)})
	}
	cw.Write([]string{"total", "clicks", strconv.FormatInt(st.Clicks, 10), strconv.FormatInt(st.Bots, 10)})
	cw.Write([]string{"total", "unique_visitors", strconv.FormatUint(st.Uniques, 10), ""})
	for _, d := range dims {
		for _, v := range st.Top[d] {
			cw.Write([]string{d, safe(v.Value), strconv.FormatInt(v.Clicks, 10), ""})
		}
	}
	cw.Flush()
	return cw.Error()
}
