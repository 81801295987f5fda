package linkreq

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"shortfleet/primary/internal/csvio"
	"shortfleet/primary/internal/store"
)

// exportPage is how many links Export reads a query: the store's largest
// page.
const exportPage = 500

// Export answers a download of every link user uid owns, or those
// carrying tag if it is set (checked already), oldest first: as CSV (see
// csvio.WriteLinks) or, when asJSON, as {"links": [...]} like the API's
// list. It reads all the links before it writes anything, so when it
// returns an error w is untouched and the caller answers the error its own
// way.
func Export(ctx context.Context, st *store.Store, uid int64, shortBase, tag string, asJSON bool, w http.ResponseWriter) error {
	all, err := AllLinks(ctx, st, uid, tag)
	if err != nil {
		return err
	}
	name := "links"
	if tag != "" {
		name += "-" + tag // a checked tag: safe in a header
	}
	if asJSON {
		out := make([]LinkJSON, len(all))
		for i, l := range all {
			out[i] = Show(shortBase, l)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
		return json.NewEncoder(w).Encode(map[string]any{"links": out})
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	// Past the headers an error can no longer change the answer: the
	// client sees a short file, and the connection's end tells it so.
	csvio.WriteLinks(w, shortBase, all)
	return nil
}

// AllLinks reads every link of user uid, or those carrying tag if set,
// oldest first, with their tags.
func AllLinks(ctx context.Context, st *store.Store, uid int64, tag string) ([]store.Link, error) {
	all := []store.Link{}
	for page := 1; ; page++ {
		links, total, err := st.ListLinks(ctx, uid, store.ListOptions{Page: page, PerPage: exportPage, Sort: "old", Tag: tag})
		if err != nil {
			return nil, fmt.Errorf("list links, page %d: %w", page, err)
		}
		all = append(all, links...)
		if len(all) >= total || len(links) == 0 {
			break
		}
	}
	return all, nil
}
