// Package api is the primary's JSON API under /api/: sign-up, API keys
// (read or write scope), links (create, bulk create from CSV, list, get,
// edit, tag, disable, export, QR codes), their stats and their tags'
// stats, and the account (password, export, deletion). Every route is described in openapi.json, served at
// /api/openapi.json; a test checks each route against it.
package api

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"shortfleet/primary/internal/account"
	"shortfleet/primary/internal/auth"
	"shortfleet/primary/internal/csvio"
	"shortfleet/primary/internal/limit"
	"shortfleet/primary/internal/linkreq"
	"shortfleet/primary/internal/metrics"
	"shortfleet/primary/internal/store"
	"shortfleet/primary/internal/target"
	sfsql "shortfleet/sql"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI is the API's OpenAPI 3 document.
func OpenAPI() []byte { return openAPI }

// Config configures the API.
type Config struct {
	// ShortBase is the origin short URLs are built on, e.g.
	// "https://sho.rt"; a link's short URL is ShortBase + "/" + code.
	ShortBase string
	Policy    *target.Policy
	// Limits are shared with the web UI (see package limit).
	Limits limit.Limits
	// Hasher hashes the passwords of sign-ups; the zero Hasher is the
	// default costs. Give the web UI the same one.
	Hasher auth.Hasher
	// Metrics counts creations and refused credentials; nil: not counted.
	Metrics *metrics.Metrics
}

// Server serves the API.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	st       *store.Store
	accounts *account.Accounts
}

// New returns the API server.
func New(cfg Config, logger *slog.Logger, st *store.Store) *Server {
	cfg.ShortBase = strings.TrimRight(cfg.ShortBase, "/")
	return &Server{cfg: cfg, logger: logger, st: st, accounts: account.New(st, cfg.Hasher, logger)}
}

// Route is one API route.
type Route struct {
	Method, Pattern string
	Auth            bool
	handler         func(http.ResponseWriter, *http.Request, store.User)
}

// Routes lists the API's routes, as registered.
func (s *Server) Routes() []Route {
	return append([]Route{
		{"POST", "/api/signup", false, s.signup},
		{"GET", "/api/openapi.json", false, func(w http.ResponseWriter, r *http.Request, _ store.User) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(openAPI)
		}},
		{"GET", "/api/keys", true, s.listKeys},
		{"POST", "/api/keys", true, s.createKey},
		{"DELETE", "/api/keys/{id}", true, s.revokeKey},
		{"GET", "/api/links", true, s.listLinks},
		{"POST", "/api/links", true, s.createLink},
		{"POST", "/api/links/bulk", true, s.bulkCreate},
		{"GET", "/api/links/export", true, s.exportLinks},
		{"GET", "/api/links/{code}", true, s.getLink},
		{"PATCH", "/api/links/{code}", true, s.patchLink},
		{"GET", "/api/links/{code}/stats", true, s.linkStats},
		{"GET", "/api/links/{code}/stats.csv", true, s.linkStatsCSV},
		{"POST", "/api/links/{code}/tags", true, s.addTags},
		{"DELETE", "/api/links/{code}/tags/{tag}", true, s.removeTag},
		{"GET", "/api/tags", true, s.listTags},
		{"GET", "/api/tags/{tag}/stats", true, s.tagStats},
		{"GET", "/api/links/{code}/qr.svg", true, s.qrSVG},
		{"GET", "/api/links/{code}/qr.png", true, s.qrPNG},
		{"POST", "/api/account/password", true, s.changePassword},
		{"DELETE", "/api/account", true, s.deleteAccount},
		{"GET", "/api/account/export", true, s.exportAccount},
	}, s.adminRoutes()...)
}

// Register adds the API's routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	for _, rt := range s.Routes() {
		h := rt.handler
		if rt.Auth {
			mux.Handle(rt.Method+" "+rt.Pattern, s.withKey(h))
		} else {
			mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) { h(w, r, store.User{}) })
		}
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path)
	})
}

// maxBody bounds a JSON request body; maxCSV a bulk import.
const (
	maxBody = 64 << 10
	maxCSV  = 4 << 20
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// ErrorBody is every error answer: {"error": "what went wrong"}.
type ErrorBody struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors,omitempty"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, ErrorBody{Error: fmt.Sprintf(format, args...)})
}

// decode reads a JSON body into v, refusing unknown fields and oversized or
// trailing input.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeUpTo(w, r, v, maxBody)
}

// decodeUpTo is decode with a body bound of its own.
func decodeUpTo(w http.ResponseWriter, r *http.Request, v any, maxBody int64) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "send JSON with Content-Type: application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", maxBody)
		} else {
			writeError(w, http.StatusBadRequest, "request body is not the JSON expected: %v", err)
		}
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "request body has data after the JSON object")
		return false
	}
	return true
}

// storeError answers a store failure: 404 for what is not the caller's,
// 503 while the database is unreachable, 500 otherwise; detail in the log.
func (s *Server) storeError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, sfsql.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.Is(err, store.ErrUnavailable):
		s.logger.Warn(what+": database unavailable", "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; could not %s. Try again shortly.", what)
	default:
		s.logger.Error(what, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error while trying to %s", what)
	}
}

// refuse answers a request the rate limits refused: 429 with Retry-After,
// or 413 when it asked for more links at once than the limits ever allow.
func refuse(w http.ResponseWriter, no *limit.Refusal, n int) {
	if no.Never {
		writeError(w, http.StatusRequestEntityTooLarge,
			"this request asks to create %d links; the limit on %s allows at most %d at once: split it", n, no.What, no.Max)
		return
	}
	secs := no.RetrySeconds()
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, http.StatusTooManyRequests, "too many %s; try again in %d s", no.What, secs)
}

type signupRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type signupResponse struct {
	UserID int64  `json:"user_id"`
	Email  string `json:"email"`
	APIKey string `json:"api_key"`
}

func (s *Server) signup(w http.ResponseWriter, r *http.Request, _ store.User) {
	if no := s.cfg.Limits.Signup(s.cfg.Limits.Client(r)); no != nil {
		refuse(w, no, 0)
		return
	}
	var req signupRequest
	if !decode(w, r, &req) {
		return
	}
	u, key, f := s.accounts.SignUp(r.Context(), req.Email, req.Password)
	if f != nil {
		if f.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		writeError(w, f.Status, "%s", f.Message)
		return
	}
	writeJSON(w, http.StatusCreated, signupResponse{UserID: u.ID, Email: u.Email, APIKey: key})
}

// withKey authenticates a request by its API key.
func (s *Server) withKey(next func(http.ResponseWriter, *http.Request, store.User)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			s.cfg.Metrics.Refused(metrics.NoAPIKey)
			w.Header().Set("WWW-Authenticate", `Bearer realm="shortfleet"`)
			writeError(w, http.StatusUnauthorized, "send your API key as Authorization: Bearer <key>")
			return
		}
		u, err := s.st.KeyUser(r.Context(), strings.TrimSpace(key))
		if errors.Is(err, sfsql.ErrNotFound) {
			s.cfg.Metrics.Refused(metrics.BadAPIKey)
			w.Header().Set("WWW-Authenticate", `Bearer realm="shortfleet", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "API key is not valid or was revoked")
			return
		}
		if err != nil {
			s.storeError(w, "check the API key", err)
			return
		}
		if u.Suspended {
			s.cfg.Metrics.Refused(metrics.Suspended)
			writeError(w, http.StatusForbidden, "this account is suspended; its API keys are refused")
			return
		}
		// Every route that changes state is a POST, PATCH or DELETE, so
		// the method alone says what a read key may do.
		if u.KeyScope == store.ScopeRead && r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.cfg.Metrics.Refused(metrics.ReadOnlyKey)
			writeError(w, http.StatusForbidden, "this API key is read-only (scope %q): it can list, read and export, not %s %s; use a key with scope %q",
				store.ScopeRead, r.Method, r.URL.Path, store.ScopeWrite)
			return
		}
		next(w, r, u)
	})
}

type keyRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

type keyResponse struct {
	store.Key
	APIKey string `json:"api_key"`
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, u store.User) {
	keys, err := s.st.ListKeys(r.Context(), u.ID)
	if err != nil {
		s.storeError(w, "list keys", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": nonNil(keys)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, u store.User) {
	var req keyRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Name = strings.TrimSpace(req.Name); req.Name == "" || len(req.Name) > 100 {
		writeError(w, http.StatusBadRequest, "a key needs a name of 1 to 100 characters")
		return
	}
	switch req.Scope {
	case "":
		req.Scope = store.ScopeWrite
	case store.ScopeRead, store.ScopeWrite:
	default:
		writeError(w, http.StatusBadRequest, "scope %q is not %q (list, read, export) or %q (everything, the default)", req.Scope, store.ScopeRead, store.ScopeWrite)
		return
	}
	key, k, err := s.st.CreateKey(r.Context(), u.ID, req.Name, req.Scope)
	if err != nil {
		s.storeError(w, "create the key", err)
		return
	}
	writeJSON(w, http.StatusCreated, keyResponse{Key: k, APIKey: key})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, u store.User) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such key")
		return
	}
	if err := s.st.RevokeKey(r.Context(), u.ID, id); err != nil {
		s.storeError(w, "revoke the key", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) linkJSON(l store.Link) linkreq.LinkJSON { return linkreq.Show(s.cfg.ShortBase, l) }

type createRequest struct {
	Target       string   `json:"target"`
	Alias        string   `json:"alias,omitempty"`
	RedirectType int      `json:"redirect_type,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	featureFields
}

// allowCreate charges the creation of n links to the caller's account and
// address. A request is charged for the links it asks for, before they are
// checked, as a log-in attempt is charged whether or not the password is
// right: refused requests are no way around the limits.
func (s *Server) allowCreate(w http.ResponseWriter, r *http.Request, u store.User, n int) bool {
	if no := s.cfg.Limits.Create(s.cfg.Limits.Client(r), u.ID, n); no != nil {
		refuse(w, no, n)
		return false
	}
	return true
}

func (s *Server) createLink(w http.ResponseWriter, r *http.Request, u store.User) {
	if !s.allowCreate(w, r, u, 1) {
		return
	}
	var req createRequest
	if !decodeUpTo(w, r, &req, maxLinkBody) {
		return
	}
	n, err := linkreq.CheckNew(s.cfg.Policy, req.Target, req.Alias, req.RedirectType)
	if err == nil {
		n.Features, err = linkreq.CheckFeatures(s.cfg.Policy, req.in(), time.Now())
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if n.Tags, err = linkreq.ParseTags(req.Tags); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	l, err := s.st.CreateLink(r.Context(), u.ID, n)
	if errors.Is(err, store.ErrAliasTaken) {
		writeError(w, http.StatusConflict, "alias %q is taken", req.Alias)
		return
	}
	if err != nil {
		s.storeError(w, "create the link", err)
		return
	}
	s.cfg.Metrics.Created(metrics.SourceAPI, 1)
	writeJSON(w, http.StatusCreated, s.linkJSON(l))
}

// bulkCreate creates the links of a CSV file, all or none. Each line costs
// what creating its link alone would: a file is charged one event per link
// it holds, all at once, so a file larger than what the account or the
// address has left is refused whole (429, Retry-After: when it would fit)
// and one larger than the limits' burst can never fit (413). Without
// this, one request could create MaxRows links for the price of one.
func (s *Server) bulkCreate(w http.ResponseWriter, r *http.Request, u store.User) {
	rows, errs := csvio.ParseBulk(http.MaxBytesReader(w, r.Body, maxCSV))
	if !s.allowCreate(w, r, u, len(rows)) {
		return
	}
	var ns []store.NewLink
	for _, row := range rows {
		n, err := linkreq.CheckNew(s.cfg.Policy, row.Target, row.Alias, row.RedirectType)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %v", row.Line, err))
			continue
		}
		ns = append(ns, n)
	}
	if len(errs) > 0 || len(ns) == 0 {
		body := ErrorBody{Error: "nothing was created: fix these lines and send the file again"}
		if len(errs) == 0 {
			body.Error = "the CSV holds no links: send target[,alias[,redirect_type]] lines"
		}
		for _, e := range errs {
			body.Errors = append(body.Errors, e.Error())
		}
		writeJSON(w, http.StatusBadRequest, body)
		return
	}
	links, err := s.st.CreateLinks(r.Context(), u.ID, ns)
	if errors.Is(err, store.ErrAliasTaken) {
		writeError(w, http.StatusConflict, "an alias in the file is taken; nothing was created")
		return
	}
	if err != nil {
		s.storeError(w, "create the links", err)
		return
	}
	s.cfg.Metrics.Created(metrics.SourceAPIBulk, len(links))
	out := make([]linkreq.LinkJSON, len(links))
	for i, l := range links {
		out[i] = s.linkJSON(l)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"links": out})
}

func (s *Server) listLinks(w http.ResponseWriter, r *http.Request, u store.User) {
	o, err := linkreq.ListFilter(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	links, total, err := s.st.ListLinks(r.Context(), u.ID, o)
	if err != nil {
		s.storeError(w, "list links", err)
		return
	}
	out := make([]linkreq.LinkJSON, len(links))
	for i, l := range links {
		out[i] = s.linkJSON(l)
	}
	writeJSON(w, http.StatusOK, map[string]any{"links": out, "total": total, "page": max(o.Page, 1)})
}

func (s *Server) exportLinks(w http.ResponseWriter, r *http.Request, u store.User) {
	o, err := linkreq.ListFilter(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "csv" && format != "json" {
		writeError(w, http.StatusBadRequest, "format %q is not csv (the default) or json", format)
		return
	}
	if err := linkreq.Export(r.Context(), s.st, u.ID, s.cfg.ShortBase, o.Tag, format == "json", w); err != nil {
		s.storeError(w, "export links", err)
	}
}

func (s *Server) getLink(w http.ResponseWriter, r *http.Request, u store.User) {
	l, err := s.st.GetLink(r.Context(), u.ID, r.PathValue("code"))
	if err != nil {
		s.storeError(w, "read the link", err)
		return
	}
	writeJSON(w, http.StatusOK, s.linkJSON(l))
}

type patchRequest struct {
	Target       *string   `json:"target,omitempty"`
	RedirectType *int      `json:"redirect_type,omitempty"`
	Disabled     *bool     `json:"disabled,omitempty"`
	Tags         *[]string `json:"tags,omitempty"` // replaces the link's tags
	featurePatchFields
}

func (s *Server) patchLink(w http.ResponseWriter, r *http.Request, u store.User) {
	var req patchRequest
	if !decodeUpTo(w, r, &req, maxLinkBody) {
		return
	}
	p := store.Patch{Disabled: req.Disabled}
	if !s.featurePatch(w, req.featurePatchFields, &p.FeaturePatch) {
		return
	}
	if req.Target != nil {
		t, err := s.cfg.Policy.Check(*req.Target)
		if err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		p.Target = &t
	}
	if req.RedirectType != nil {
		switch *req.RedirectType {
		case 301, 302, 307, 308:
			p.RedirectType = req.RedirectType
		default:
			writeError(w, http.StatusBadRequest, "redirect_type %d is not one of 301, 302, 307, 308", *req.RedirectType)
			return
		}
	}
	var tags []string
	if req.Tags != nil {
		var err error
		if tags, err = linkreq.ParseTags(*req.Tags); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	l, err := s.st.UpdateLink(r.Context(), u.ID, r.PathValue("code"), p)
	if errors.Is(err, store.ErrTakenDown) {
		writeError(w, http.StatusConflict, "disabled: %v", err)
		return
	}
	if err != nil {
		s.storeError(w, "update the link", err)
		return
	}
	if req.Tags != nil {
		if l, err = s.st.SetTags(r.Context(), u.ID, l.Code, tags); err != nil {
			s.tagError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, s.linkJSON(l))
}

func (s *Server) readStats(w http.ResponseWriter, r *http.Request, u store.User) (store.Link, store.Stats, bool) {
	from, to, gran, err := linkreq.StatsRange(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return store.Link{}, store.Stats{}, false
	}
	l, err := s.st.GetLink(r.Context(), u.ID, r.PathValue("code"))
	if err != nil {
		s.storeError(w, "read the link", err)
		return store.Link{}, store.Stats{}, false
	}
	st, err := s.st.LinkStats(r.Context(), l.ID, from, to, gran)
	if err != nil {
		s.storeError(w, "read the stats", err)
		return store.Link{}, store.Stats{}, false
	}
	return l, st, true
}

// StatsJSON is the answer to GET /api/links/{code}/stats.
type StatsJSON struct {
	Code string `json:"code"`
	store.Stats
	BotShare float64 `json:"bot_share"`
}

func (s *Server) linkStats(w http.ResponseWriter, r *http.Request, u store.User) {
	l, st, ok := s.readStats(w, r, u)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, StatsJSON{Code: l.Code, Stats: st, BotShare: st.BotShare()})
}

func (s *Server) linkStatsCSV(w http.ResponseWriter, r *http.Request, u store.User) {
	l, st, ok := s.readStats(w, r, u)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-stats.csv"`, l.Code))
	csvio.WriteStats(w, st, sfsql.DimNames)
}
