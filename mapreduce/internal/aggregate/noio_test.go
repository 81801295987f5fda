package aggregate

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoIO: the package imports nothing that does I/O itself, so it stays
// the pure core package job orchestrates around. Segment bytes come in
// decoded by logfmt; classification is package dims'.
func TestNoIO(t *testing.T) {
	banned := []string{"os", "os/exec", "io", "io/fs", "io/ioutil", "bufio", "net", "net/http", "path/filepath",
		"database/sql", "log", "log/slog", "github.com/jackc/pgx/v5", "github.com/apache/arrow-go/v18/arrow/ipc",
		"github.com/apache/arrow-go/v18/parquet"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, b := range banned {
				// A module's path (it has a dot) bans its subpackages too.
				if path == b || strings.Contains(b, ".") && strings.HasPrefix(path, b+"/") {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source files found")
	}
}
