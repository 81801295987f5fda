package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"shortfleet/primary/internal/linkreq"
	"shortfleet/primary/internal/metrics"
	"shortfleet/primary/internal/store"
	sfsql "shortfleet/sql"
)

// registerAdmin adds the admin page (issue 21): accounts searched by
// e-mail, suspended and unsuspended; links taken down with a reason and
// restored; the blocklist re-applied to existing links. Every route needs
// an admin's session (403 otherwise), every post a CSRF token.
func (s *Server) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin", s.auth(s.admin(s.adminPage)))
	mux.HandleFunc("POST /admin/users/{id}/suspend", s.form(s.auth(s.admin(s.adminSuspend(true)))))
	mux.HandleFunc("POST /admin/users/{id}/unsuspend", s.form(s.auth(s.admin(s.adminSuspend(false)))))
	mux.HandleFunc("POST /admin/takedown", s.form(s.auth(s.admin(s.adminTakeDown))))
	mux.HandleFunc("POST /admin/links/{code}/restore", s.form(s.auth(s.admin(s.adminRestore))))
	mux.HandleFunc("POST /admin/reapply", s.form(s.auth(s.admin(s.adminReapply))))
}

// admin refuses a session that is not an admin's.
func (s *Server) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !userOf(r).IsAdmin {
			s.cfg.Metrics.Refused(metrics.NotAdmin)
			s.fail(w, r, http.StatusForbidden, "Admins only", "This page is for the fleet's admins.")
			return
		}
		next(w, r)
	}
}

// adminData fills the admin page.
type adminData struct {
	Query        string
	Users        []store.AdminUser
	Total, Page  int
	Prev, Next   int
	TakenDown    []store.AdminLink
	Code, Reason string // the takedown form, kept when refused
	// Reapplied is the report of a re-apply of the blocklist: the links
	// it took down (nil: none was run).
	Reapplied *[]store.AdminLink
	ShortBase string
}

const adminPerPage = 20

func (s *Server) adminPage(w http.ResponseWriter, r *http.Request) {
	s.renderAdmin(w, r, http.StatusOK, adminData{}, "", "")
}

// renderAdmin shows the admin page with d's form values and report, the
// search from the page's query string.
func (s *Server) renderAdmin(w http.ResponseWriter, r *http.Request, status int, d adminData, flash, errMsg string) {
	q := r.URL.Query()
	d.Query, d.Page, d.ShortBase = q.Get("q"), 1, s.cfg.ShortBase
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > store.MaxPage {
			s.fail(w, r, http.StatusBadRequest, "Bad page", "page must be a whole number from 1.")
			return
		}
		d.Page = n
	}
	if len(d.Query) > 254 || !utf8.ValidString(d.Query) {
		s.fail(w, r, http.StatusBadRequest, "Bad search", "Search by part of an e-mail address: at most 254 bytes of text.")
		return
	}
	users, total, err := s.st.ListUsers(r.Context(), d.Query, d.Page, adminPerPage)
	if err != nil {
		s.storeFail(w, r, "list the accounts", err)
		return
	}
	d.Users, d.Total = users, total
	if d.Page > 1 {
		d.Prev = d.Page - 1
	}
	if d.Page*adminPerPage < total {
		d.Next = d.Page + 1
	}
	if d.TakenDown, err = s.st.TakenDown(r.Context(), 50); err != nil {
		s.storeFail(w, r, "list the links taken down", err)
		return
	}
	s.render(w, r, status, "admin", page{Title: "Admin", Flash: flash, Error: errMsg, Data: d})
}

// back returns to the admin page with its search kept.
func back(r *http.Request) string {
	q := r.PostFormValue("q")
	if q == "" {
		return "/admin"
	}
	return "/admin?q=" + urlEscape(q)
}

func (s *Server) adminSuspend(suspend bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			s.fail(w, r, http.StatusBadRequest, "Bad request", "No such account.")
			return
		}
		if suspend && id == userOf(r).ID {
			s.renderAdmin(w, r, http.StatusBadRequest, adminData{}, "", "You cannot suspend your own account.")
			return
		}
		if suspend {
			_, err = s.st.SuspendUser(r.Context(), id)
		} else {
			_, err = s.st.UnsuspendUser(r.Context(), id)
		}
		if errors.Is(err, sfsql.ErrNotFound) {
			s.fail(w, r, http.StatusNotFound, "Not found", "There is no such account.")
			return
		}
		if err != nil {
			s.storeFail(w, r, "change the account", err)
			return
		}
		s.logger.Info("admin action", "admin", userOf(r).ID, "suspend", suspend, "user", id)
		http.Redirect(w, r, back(r), http.StatusSeeOther)
	}
}

func (s *Server) adminTakeDown(w http.ResponseWriter, r *http.Request) {
	d := adminData{Code: strings.TrimSpace(r.PostFormValue("code")), Reason: r.PostFormValue("reason")}
	code := linkreq.LinkRef(d.Code)
	if code == "" {
		s.renderAdmin(w, r, http.StatusBadRequest, d, "", "Give the code, alias or short URL of the link to take down.")
		return
	}
	reason, err := linkreq.CheckReason(d.Reason)
	if err != nil {
		s.renderAdmin(w, r, http.StatusBadRequest, d, "", "The link was not taken down: "+err.Error()+".")
		return
	}
	l, err := s.st.FindLink(r.Context(), code)
	if errors.Is(err, sfsql.ErrNotFound) {
		s.renderAdmin(w, r, http.StatusNotFound, d, "", "There is no link "+code+".")
		return
	}
	if err == nil {
		l, err = s.st.TakeDown(r.Context(), l.ID, reason)
	}
	if err != nil {
		s.storeFail(w, r, "take the link down", err)
		return
	}
	s.logger.Info("admin action", "admin", userOf(r).ID, "takedown", l.Code)
	s.renderAdmin(w, r, http.StatusOK, adminData{}, "Link "+l.Code+" ("+l.Owner+") is taken down.", "")
}

func (s *Server) adminRestore(w http.ResponseWriter, r *http.Request) {
	l, err := s.st.FindLink(r.Context(), r.PathValue("code"))
	if err == nil {
		l, err = s.st.Restore(r.Context(), l.ID)
	}
	switch {
	case errors.Is(err, sfsql.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, "Not found", "There is no such link.")
		return
	case errors.Is(err, store.ErrNotTakenDown):
		s.renderAdmin(w, r, http.StatusConflict, adminData{}, "", "That link is not taken down.")
		return
	case err != nil:
		s.storeFail(w, r, "restore the link", err)
		return
	}
	s.logger.Info("admin action", "admin", userOf(r).ID, "restore", l.Code)
	s.renderAdmin(w, r, http.StatusOK, adminData{}, "Link "+l.Code+" is restored.", "")
}

func (s *Server) adminReapply(w http.ResponseWriter, r *http.Request) {
	links, err := s.st.ReapplyPolicy(r.Context(), s.cfg.Policy.Refusal)
	if err != nil {
		s.logger.Error("re-apply the blocklist", "disabled", len(links), "err", err)
		s.storeFail(w, r, "re-apply the blocklist ("+strconv.Itoa(len(links))+" links taken down before the failure stay down; run it again)", err)
		return
	}
	s.logger.Info("admin action", "admin", userOf(r).ID, "reapply", len(links))
	s.renderAdmin(w, r, http.StatusOK, adminData{Reapplied: &links},
		"The blocklist is re-applied: "+linkCount(len(links))+" taken down.", "")
}

// linkCount is "1 link" or "n links".
func linkCount(n int) string {
	if n == 1 {
		return "1 link"
	}
	return strconv.Itoa(n) + " links"
}
