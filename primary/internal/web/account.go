package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"shortfleet/primary/internal/account"
	"shortfleet/primary/internal/metrics"
	"shortfleet/primary/internal/store"
)

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string) {
	s.render(w, r, status, "account", page{Title: "Account", Flash: flash, Error: errMsg})
}

func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	s.accountPage(w, r, http.StatusOK, "", "")
}

// accountFailure shows a failed account change on the account page, a
// wrong password named by its field.
func (s *Server) accountFailure(w http.ResponseWriter, r *http.Request, f *account.Failure, field string) {
	switch f.Status {
	case http.StatusForbidden:
		s.cfg.Metrics.Refused(metrics.BadPassword)
		s.accountPage(w, r, f.Status, "", field+" is wrong.")
	case http.StatusBadRequest:
		s.accountPage(w, r, f.Status, "", f.Message)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
		s.fail(w, r, f.Status, "Try again shortly", "The database is unavailable; nothing was changed.")
	default: // the cause is logged
		s.fail(w, r, f.Status, "Something went wrong", "Nothing was changed.")
	}
}

// allowPassword charges a password check to the log-in limits.
func (s *Server) allowPassword(w http.ResponseWriter, r *http.Request) bool {
	if no := s.cfg.Limits.Login(s.cfg.Limits.Client(r), userOf(r).Email); no != nil {
		s.refuse(w, r, no, 0)
		return false
	}
	return true
}

// changePassword changes the password with the current one; every other
// session of the account ends, this browser's stays.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("current_password") == "" {
		s.accountPage(w, r, http.StatusBadRequest, "", "Current password is missing.")
		return
	}
	if !s.allowPassword(w, r) {
		return
	}
	var keep string
	if c, err := r.Cookie(s.cookieName("sf_session")); err == nil {
		keep = c.Value
	}
	ended, f := s.accounts.ChangePassword(r.Context(), *userOf(r), r.PostFormValue("current_password"), r.PostFormValue("new_password"), keep)
	if f != nil {
		s.accountFailure(w, r, f, "Current password")
		return
	}
	s.accountPage(w, r, http.StatusOK, "Password changed. Other sessions logged out: "+strconv.FormatInt(ended, 10)+".", "")
}

// deleteAccount deletes the account given its password again and the box
// ticked, then logs the browser out.
func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("confirm") != "yes" {
		s.accountPage(w, r, http.StatusBadRequest, "", "Tick the box to confirm that the account is to be deleted.")
		return
	}
	if r.PostFormValue("password") == "" {
		s.accountPage(w, r, http.StatusBadRequest, "", "Password is missing: deleting the account asks for it again.")
		return
	}
	if !s.allowPassword(w, r) {
		return
	}
	n, f := s.accounts.DeleteAccount(r.Context(), *userOf(r), r.PostFormValue("password"))
	if f != nil {
		s.accountFailure(w, r, f, "Password")
		return
	}
	s.setCookie(w, "sf_session", "", -1)
	// The page is rendered without the user: the session is gone.
	r = r.WithContext(context.WithValue(r.Context(), userKey{}, (*store.User)(nil)))
	s.render(w, r, http.StatusOK, "error", page{Title: "Account deleted",
		Data: "Your account is deleted; its " + strconv.Itoa(n) + " links answer 410 Gone from now on. You can sign up again with the same email."})
}

// exportAccount downloads everything the account holds, as JSON.
func (s *Server) exportAccount(w http.ResponseWriter, r *http.Request) {
	x, err := s.st.ExportAccount(r.Context(), userOf(r).ID)
	if err != nil {
		s.storeFail(w, r, "export your account", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="shortfleet-account.json"`)
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(x)
}
