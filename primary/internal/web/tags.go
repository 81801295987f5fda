package web

import (
	"html/template"
	"net/http"
	"time"

	"shortfleet/primary/internal/linkreq"
	"shortfleet/primary/internal/store"
	sfsql "shortfleet/sql"
)

// tagData is the tag page: the stats of every link carrying the tag,
// together, drawn by the link page's own stats template.
type tagData struct {
	Tag        string
	Links      []store.Link
	Stats      store.Stats
	BotPercent float64
	Chart      template.HTML
	Tops       []topBlock
	Range      string
	Ranges     []string
}

func (s *Server) tagPage(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	tag, err := linkreq.ParseTag(r.PathValue("tag"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Bad tag", err.Error())
		return
	}
	q := r.URL.Query()
	rng := q.Get("range")
	if rng == "" {
		rng = "7d"
		q.Set("range", rng)
	}
	from, to, gran, err := linkreq.StatsRange(q, time.Now())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Bad range", err.Error())
		return
	}
	links, err := linkreq.AllLinks(r.Context(), s.st, u.ID, tag)
	if err != nil {
		s.storeFail(w, r, "list the tag's links", err)
		return
	}
	if len(links) == 0 {
		s.fail(w, r, http.StatusNotFound, "Not found", "None of your links carries the tag "+tag+".")
		return
	}
	ids := make([]int64, len(links))
	for i, l := range links {
		ids[i] = l.ID
	}
	st, err := s.st.LinksStats(r.Context(), ids, from, to, gran)
	if err != nil {
		s.storeFail(w, r, "read the stats", err)
		return
	}
	d := tagData{Tag: tag, Links: links, Stats: st, BotPercent: 100 * st.BotShare(), Chart: Chart(st), Range: rng,
		Ranges: []string{"24h", "48h", "7d", "30d", "90d", "365d"}}
	for _, name := range sfsql.DimNames {
		d.Tops = append(d.Tops, topBlock{Title: topTitles[name], Values: st.Top[name]})
	}
	s.render(w, r, http.StatusOK, "tag", page{Title: "Tag " + tag, Data: d})
}
