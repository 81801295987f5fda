package api

import (
	"net/http"
	"strconv"

	"shortfleet/primary/internal/account"
	"shortfleet/primary/internal/metrics"
	"shortfleet/primary/internal/qrcode"
	"shortfleet/primary/internal/store"
)

// accountFailure answers a failed account change; a wrong password is a
// 403 naming the field that held it.
func (s *Server) accountFailure(w http.ResponseWriter, f *account.Failure, field string) {
	switch f.Status {
	case http.StatusForbidden:
		s.cfg.Metrics.Refused(metrics.BadPassword)
		writeError(w, f.Status, "%s is wrong", field)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
		writeError(w, f.Status, "%s", f.Message)
	default:
		writeError(w, f.Status, "%s", f.Message)
	}
}

// allowPassword charges a password check to the log-in limits, as a
// log-in is: the current password asked for is no way around them.
func (s *Server) allowPassword(w http.ResponseWriter, r *http.Request, u store.User) bool {
	if no := s.cfg.Limits.Login(s.cfg.Limits.Client(r), u.Email); no != nil {
		refuse(w, no, 0)
		return false
	}
	return true
}

type passwordRequest struct {
	Current string `json:"current_password"`
	New     string `json:"new_password"`
}

// changePassword changes the password; every session of the account ends
// (the API has none of its own to keep), API keys stay.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, u store.User) {
	var req passwordRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Current == "" {
		writeError(w, http.StatusBadRequest, "current_password is missing")
		return
	}
	if !s.allowPassword(w, r, u) {
		return
	}
	ended, f := s.accounts.ChangePassword(r.Context(), u, req.Current, req.New, "")
	if f != nil {
		s.accountFailure(w, f, "current_password")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions_ended": ended})
}

type deleteAccountRequest struct {
	Password string `json:"password"`
}

// deleteAccount deletes the account, given its password again: a key
// alone, perhaps leaked, does not suffice.
func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request, u store.User) {
	var req deleteAccountRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Password == "" {
		writeError(w, http.StatusBadRequest, "password is missing: deleting the account asks for it again")
		return
	}
	if !s.allowPassword(w, r, u) {
		return
	}
	n, f := s.accounts.DeleteAccount(r.Context(), u, req.Password)
	if f != nil {
		s.accountFailure(w, f, "password")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true, "links_disabled": n})
}

// exportAccount answers everything the account holds, as JSON.
func (s *Server) exportAccount(w http.ResponseWriter, r *http.Request, u store.User) {
	x, err := s.st.ExportAccount(r.Context(), u.ID)
	if err != nil {
		s.storeError(w, "export the account", err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="shortfleet-account.json"`)
	writeJSON(w, http.StatusOK, x)
}

func (s *Server) qrSVG(w http.ResponseWriter, r *http.Request, u store.User) { s.qr(w, r, u, false) }
func (s *Server) qrPNG(w http.ResponseWriter, r *http.Request, u store.User) { s.qr(w, r, u, true) }

// qr answers a link's QR code, as SVG or as PNG; a PNG's scale (pixels a
// module) is ?scale=, 8 by default.
func (s *Server) qr(w http.ResponseWriter, r *http.Request, u store.User, asPNG bool) {
	scale := 8
	if v := r.URL.Query().Get("scale"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > qrcode.MaxScale {
			writeError(w, http.StatusBadRequest, "scale %q is not a whole number of pixels a module from 1 to %d", v, qrcode.MaxScale)
			return
		}
		scale = n
	}
	l, err := s.st.GetLink(r.Context(), u.ID, r.PathValue("code"))
	if err != nil {
		s.storeError(w, "read the link", err)
		return
	}
	url := s.cfg.ShortBase + "/" + l.Code
	var img []byte
	ct := "image/svg+xml"
	if asPNG {
		img, err = qrcode.PNG(url, scale)
		ct = "image/png"
	} else {
		img, err = qrcode.SVG(url)
	}
	if err != nil {
		s.logger.Error("draw a QR code", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error while drawing the QR code")
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "private, max-age=86400")
	w.Write(img)
}
