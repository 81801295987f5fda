package linkreq

import (
	"context"
	"fmt"
	"net/http"

	"shortfleet/primary/internal/csvio"
	"shortfleet/primary/internal/store"
)

// exportPage is how many links Export reads a query: the store's largest
// page.
const exportPage = 500

// Export answers a download of every link user uid owns, oldest first, as
// CSV (see csvio.WriteLinks): the headers, then the rows. It reads all
// the links before it writes anything, so when it returns an error w is
// untouched and the caller answers the error its own way.
func Export(ctx context.Context, st *store.Store, uid int64, shortBase string, w http.ResponseWriter) error {
	var all []store.Link
	for page := 1; ; page++ {
		links, total, err := st.ListLinks(ctx, uid, store.ListOptions{Page: page, PerPage: exportPage, Sort: "old"})
		if err != nil {
			return fmt.Errorf("list links, page %d: %w", page, err)
		}
		all = append(all, links...)
		if len(all) >= total || len(links) == 0 {
			break
		}
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="links.csv"`)
	// Past the headers an error can no longer change the answer: the
	// client sees a short file, and the connection's end tells it so.
	csvio.WriteLinks(w, shortBase, all)
	return nil
}
