// Package report writes benchmark results as Markdown: a dated file under
// bench/results, and the same table between markers in bench/README.md, so
// no figure there is typed by hand.
package report

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Table is a Markdown table.
type Table struct {
	Header []string
	Rows   [][]string
}

// Markdown renders the table.
func (t Table) Markdown() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.Header, " | ") + " |\n|")
	for range t.Header {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

// Machine describes where the figures were measured.
func Machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					model = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(data), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/1024/1024)
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s, %s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// Write writes body to path, and replaces the text between
// "<!-- name:start -->" and "<!-- name:end -->" in readme with it.
func Write(path, readme, name, body string) error {
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		return err
	}
	return ReplaceSection(readme, name, body)
}

// Today is the date used in result file names.
func Today() string { return time.Now().UTC().Format("2006-01-02") }

// Headline is one headline figure of a benchmark driver, by a name that
// stays the same from run to run.
type Headline struct {
	Name  string
	Value float64
}

// PrintHeadlines ends a driver's output with one "bench: NAME VALUE" line
// a headline, for machines to read: a ratio with three decimals, a larger
// number with none.
func PrintHeadlines(w io.Writer, hs ...Headline) {
	for _, h := range hs {
		prec := 3
		if math.Abs(h.Value) >= 100 {
			prec = 0
		}
		fmt.Fprintf(w, "bench: %s %s\n", h.Name, strconv.FormatFloat(h.Value, 'f', prec, 64))
	}
}

// Slug turns a scenario's name into a headline name: lower case, runs of
// anything but letters and digits as one underscore.
func Slug(s string) string {
	var b strings.Builder
	gap := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if gap && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
			gap = false
		} else {
			gap = true
		}
	}
	return b.String()
}

// WorkDir makes a driver's work folder under the system's temporary one,
// open to nginx's workers and the postgres user (0755), and returns it
// with the function that removes it; with keep, that function leaves it
// in place to be looked at.
func WorkDir(driver string, keep bool) (string, func(), error) {
	dir, err := os.MkdirTemp("", "shortfleet-"+driver+"-")
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	if keep {
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
