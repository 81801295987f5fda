package web

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFrontEndsAreSiblings: the browser UI and the JSON API are two front
// ends over the same packages (account, linkreq, store, ...); neither
// imports the other, so a change to one cannot reach the other's
// behaviour by the back door. (The UI once imported the API for its
// validation, list and stats parsing.) Tests may put both on one mux, as
// main does; only the packages' own files are checked.
func TestFrontEndsAreSiblings(t *testing.T) {
	for _, tc := range []struct{ dir, mustNot string }{
		{".", "shortfleet/primary/internal/api"},
		{"../api", "shortfleet/primary/internal/web"},
	} {
		files, err := filepath.Glob(filepath.Join(tc.dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", tc.dir, err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				if path, _ := strconv.Unquote(imp.Path.Value); path == tc.mustNot {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
	}
}
