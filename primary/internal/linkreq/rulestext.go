package linkreq

import (
	"fmt"
	"strings"

	sfsql "shortfleet/sql"
)

// ParseRulesText reads redirect rules as the web form takes them: one a
// line, "kind value target" separated by spaces, e.g.
// "country FR https://example.fr/". Blank lines are skipped. It checks the
// shape only; CheckRules checks the values.
func ParseRulesText(text string) ([]sfsql.Rule, error) {
	var rs []sfsql.Rule
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("rules, line %d: write kind, value and target separated by spaces, e.g. \"country FR https://example.fr/\"", i+1)
		}
		if len(rs) == sfsql.MaxRules {
			return nil, fmt.Errorf("rules: at most %d rules", sfsql.MaxRules)
		}
		rs = append(rs, sfsql.Rule{Kind: strings.ToLower(f[0]), Value: f[1], Target: f[2]})
	}
	return rs, nil
}

// FormatRulesText writes rules as ParseRulesText reads them.
func FormatRulesText(rs []sfsql.Rule) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %s %s\n", r.Kind, r.Value, r.Target)
	}
	return b.String()
}
