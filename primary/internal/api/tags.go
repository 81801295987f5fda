package api

import (
	"errors"
	"net/http"
	"time"

	"shortfleet/primary/internal/linkreq"
	"shortfleet/primary/internal/store"
)

type tagsRequest struct {
	Tags []string `json:"tags"`
}

// tagError answers a failed change of tags: 400 for too many, else as
// any store failure.
func (s *Server) tagError(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrTooManyTags) {
		writeError(w, http.StatusBadRequest, "tags: %v", err)
		return
	}
	s.storeError(w, "change the link's tags", err)
}

// addTags adds tags to a link, keeping those it has.
func (s *Server) addTags(w http.ResponseWriter, r *http.Request, u store.User) {
	var req tagsRequest
	if !decode(w, r, &req) {
		return
	}
	tags, err := linkreq.ParseTags(req.Tags)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if len(tags) == 0 {
		writeError(w, http.StatusBadRequest, "tags: give at least one tag to add")
		return
	}
	l, err := s.st.AddTags(r.Context(), u.ID, r.PathValue("code"), tags)
	if err != nil {
		s.tagError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.linkJSON(l))
}

// removeTag removes one tag from a link; a tag the link lacks is no error.
func (s *Server) removeTag(w http.ResponseWriter, r *http.Request, u store.User) {
	tag, err := linkreq.ParseTag(r.PathValue("tag"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	l, err := s.st.RemoveTags(r.Context(), u.ID, r.PathValue("code"), []string{tag})
	if err != nil {
		s.tagError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.linkJSON(l))
}

func (s *Server) listTags(w http.ResponseWriter, r *http.Request, u store.User) {
	tags, err := s.st.UserTags(r.Context(), u.ID)
	if err != nil {
		s.storeError(w, "list tags", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": nonNil(tags)})
}

// TagStatsJSON is the answer to GET /api/tags/{tag}/stats: the stats of
// every link carrying the tag, together.
type TagStatsJSON struct {
	Tag   string `json:"tag"`
	Links int    `json:"links"`
	store.Stats
	BotShare float64 `json:"bot_share"`
}

func (s *Server) tagStats(w http.ResponseWriter, r *http.Request, u store.User) {
	tag, err := linkreq.ParseTag(r.PathValue("tag"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	from, to, gran, err := linkreq.StatsRange(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	ids, err := s.st.TagLinks(r.Context(), u.ID, tag)
	if err != nil {
		s.storeError(w, "read the tag's links", err)
		return
	}
	st, err := s.st.LinksStats(r.Context(), ids, from, to, gran)
	if err != nil {
		s.storeError(w, "read the stats", err)
		return
	}
	writeJSON(w, http.StatusOK, TagStatsJSON{Tag: tag, Links: len(ids), Stats: st, BotShare: st.BotShare()})
}
