package api

import (
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"

	"shortfleet/primary/internal/linkreq"
	"shortfleet/primary/internal/metrics"
	"shortfleet/primary/internal/store"
)

// adminRoutes are the admin API's routes (issue 21): accounts, takedowns
// and the blocklist applied to existing links. Every one takes an admin's
// API key; any other key is refused with 403.
func (s *Server) adminRoutes() []Route {
	return []Route{
		{"GET", "/api/admin/users", true, s.admin(s.adminUsers)},
		{"POST", "/api/admin/users/{id}/suspend", true, s.admin(s.adminSuspend(true))},
		{"POST", "/api/admin/users/{id}/unsuspend", true, s.admin(s.adminSuspend(false))},
		{"GET", "/api/admin/links/{code}", true, s.admin(s.adminGetLink)},
		{"POST", "/api/admin/links/{code}/takedown", true, s.admin(s.adminTakeDown)},
		{"POST", "/api/admin/links/{code}/restore", true, s.admin(s.adminRestore)},
		{"POST", "/api/admin/blocklist/reapply", true, s.admin(s.adminReapply)},
	}
}

// admin refuses a caller who is not an admin.
func (s *Server) admin(next func(http.ResponseWriter, *http.Request, store.User)) func(http.ResponseWriter, *http.Request, store.User) {
	return func(w http.ResponseWriter, r *http.Request, u store.User) {
		if !u.IsAdmin {
			s.cfg.Metrics.Refused(metrics.NotAdmin)
			writeError(w, http.StatusForbidden, "this endpoint is for admins only")
			return
		}
		next(w, r, u)
	}
}

// AdminUsersJSON is the answer to GET /api/admin/users.
type AdminUsersJSON struct {
	Users []store.AdminUser `json:"users"`
	Total int               `json:"total"`
	Page  int               `json:"page"`
}

// positive reads an optional positive integer query parameter; def when
// absent.
func positive(w http.ResponseWriter, r *http.Request, name string, def, most int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		writeError(w, http.StatusBadRequest, "%s must be a whole number from 1 to %d", name, most)
		return 0, false
	}
	return n, true
}

func (s *Server) adminUsers(w http.ResponseWriter, r *http.Request, _ store.User) {
	q := r.URL.Query().Get("q")
	if len(q) > 254 || !utf8.ValidString(q) {
		writeError(w, http.StatusBadRequest, "q must be UTF-8 text of at most 254 bytes: part of an e-mail address")
		return
	}
	page, ok := positive(w, r, "page", 1, store.MaxPage)
	if !ok {
		return
	}
	per, ok := positive(w, r, "per_page", 50, 500)
	if !ok {
		return
	}
	users, total, err := s.st.ListUsers(r.Context(), q, page, per)
	if err != nil {
		s.storeError(w, "list users", err)
		return
	}
	writeJSON(w, http.StatusOK, AdminUsersJSON{Users: nonNil(users), Total: total, Page: page})
}

// SuspendJSON is the answer to suspending or unsuspending an account.
type SuspendJSON struct {
	User store.AdminUser `json:"user"`
	// Links is how many links the suspension disabled, or its lifting
	// released.
	Links int64 `json:"links"`
}

func (s *Server) adminSuspend(suspend bool) func(http.ResponseWriter, *http.Request, store.User) {
	return func(w http.ResponseWriter, r *http.Request, u store.User) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			writeError(w, http.StatusBadRequest, "id must be a user's id, a positive whole number")
			return
		}
		if suspend && id == u.ID {
			writeError(w, http.StatusBadRequest, "id: you cannot suspend your own account")
			return
		}
		var n int64
		if suspend {
			n, err = s.st.SuspendUser(r.Context(), id)
		} else {
			n, err = s.st.UnsuspendUser(r.Context(), id)
		}
		if err != nil {
			s.storeError(w, "change the account", err)
			return
		}
		au, err := s.st.AdminUserByID(r.Context(), id)
		if err != nil {
			s.storeError(w, "read the account", err)
			return
		}
		s.logger.Info("admin action", "admin", u.ID, "suspend", suspend, "user", id, "links", n)
		writeJSON(w, http.StatusOK, SuspendJSON{User: au, Links: n})
	}
}

// AdminLinkJSON is any account's link as the admin API shows it.
type AdminLinkJSON struct {
	store.AdminLink
	ShortURL string `json:"short_url"`
}

func (s *Server) adminLinkJSON(l store.AdminLink) AdminLinkJSON {
	return AdminLinkJSON{AdminLink: l, ShortURL: s.cfg.ShortBase + "/" + l.Code}
}

func (s *Server) adminGetLink(w http.ResponseWriter, r *http.Request, _ store.User) {
	l, err := s.st.FindLink(r.Context(), r.PathValue("code"))
	if err != nil {
		s.storeError(w, "read the link", err)
		return
	}
	writeJSON(w, http.StatusOK, s.adminLinkJSON(l))
}

type takedownRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) adminTakeDown(w http.ResponseWriter, r *http.Request, u store.User) {
	var req takedownRequest
	if !decode(w, r, &req) {
		return
	}
	reason, err := linkreq.CheckReason(req.Reason)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	l, err := s.st.FindLink(r.Context(), r.PathValue("code"))
	if err != nil {
		s.storeError(w, "read the link", err)
		return
	}
	if l, err = s.st.TakeDown(r.Context(), l.ID, reason); err != nil {
		s.storeError(w, "take the link down", err)
		return
	}
	s.logger.Info("admin action", "admin", u.ID, "takedown", l.Code)
	writeJSON(w, http.StatusOK, s.adminLinkJSON(l))
}

func (s *Server) adminRestore(w http.ResponseWriter, r *http.Request, u store.User) {
	l, err := s.st.FindLink(r.Context(), r.PathValue("code"))
	if err != nil {
		s.storeError(w, "read the link", err)
		return
	}
	l, err = s.st.Restore(r.Context(), l.ID)
	if errors.Is(err, store.ErrNotTakenDown) {
		writeError(w, http.StatusConflict, "link %s is not taken down", r.PathValue("code"))
		return
	}
	if err != nil {
		s.storeError(w, "restore the link", err)
		return
	}
	s.logger.Info("admin action", "admin", u.ID, "restore", l.Code)
	writeJSON(w, http.StatusOK, s.adminLinkJSON(l))
}

// ReapplyJSON is the answer to POST /api/admin/blocklist/reapply: the
// links the current policy refuses, now taken down.
type ReapplyJSON struct {
	Disabled int             `json:"disabled"`
	Links    []AdminLinkJSON `json:"links"`
}

func (s *Server) adminReapply(w http.ResponseWriter, r *http.Request, u store.User) {
	links, err := s.st.ReapplyPolicy(r.Context(), s.cfg.Policy.Refusal)
	out := ReapplyJSON{Disabled: len(links), Links: make([]AdminLinkJSON, len(links))}
	for i, l := range links {
		out.Links[i] = s.adminLinkJSON(l)
	}
	if err != nil {
		// Part may be done: what was taken down stays, and a second run
		// goes on from there.
		s.logger.Error("re-apply the blocklist", "disabled", len(links), "err", err)
		s.storeError(w, "re-apply the blocklist (links taken down before the failure stay down; run it again)", err)
		return
	}
	s.logger.Info("admin action", "admin", u.ID, "reapply", len(links))
	writeJSON(w, http.StatusOK, out)
}
