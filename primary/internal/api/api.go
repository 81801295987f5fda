// Package api is the primary's JSON API: sign-up, link creation and a
// link's stats. It is the only writer of links.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"shortfleet/primary/internal/auth"
	"shortfleet/primary/internal/target"
	sfsql "shortfleet/sql"
	"shortfleet/sql/codes"
)

// Config configures the API.
type Config struct {
	// ShortBase is the origin short URLs are built on, e.g.
	// "https://sho.rt"; a link's short URL is ShortBase + "/" + code.
	ShortBase string
}

// Server serves the API.
type Server struct {
	cfg    Config
	logger *slog.Logger
	db     *pgxpool.Pool
	codec  *codes.Codec
}

// New returns the API server.
func New(cfg Config, logger *slog.Logger, db *pgxpool.Pool, codec *codes.Codec) *Server {
	cfg.ShortBase = strings.TrimRight(cfg.ShortBase, "/")
	return &Server{cfg: cfg, logger: logger, db: db, codec: codec}
}

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /api/signup", s.signup)
	mux.Handle("POST /api/links", s.withKey(s.createLink))
	mux.Handle("GET /api/links/{code}/stats", s.withKey(s.linkStats))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path)
	})
	return mux
}

// maxBody bounds a JSON request body.
const maxBody = 64 << 10

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// errorBody is every error answer: {"error": "what went wrong"}.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, errorBody{Error: fmt.Sprintf(format, args...)})
}

// decode reads a JSON body into v, refusing unknown fields and oversized or
// trailing input.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
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

// dbError answers a database failure: 503 while the database is
// unreachable, 500 otherwise, with the detail only in the log.
func (s *Server) dbError(w http.ResponseWriter, what string, err error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		s.logger.Error(what, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error while trying to %s", what)
		return
	}
	s.logger.Warn(what+": database unavailable", "err", err)
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, "the database is unavailable; could not %s. Try again shortly.", what)
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

func (s *Server) signup(w http.ResponseWriter, r *http.Request) {
	var req signupRequest
	if !decode(w, r, &req) {
		return
	}
	addr, err := mail.ParseAddress(req.Email)
	if err != nil || addr.Address != strings.TrimSpace(req.Email) || len(addr.Address) > 254 {
		writeError(w, http.StatusBadRequest, "email %q is not a valid address", req.Email)
		return
	}
	email := strings.ToLower(addr.Address)
	hash, err := auth.HashPassword(req.Password)
	if errors.Is(err, auth.ErrPasswordPolicy) {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err != nil {
		s.logger.Error("hash password", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	key, err := auth.NewAPIKey()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	keyHash, _ := auth.HashAPIKey(key)
	var uid int64
	err = pgx.BeginFunc(r.Context(), s.db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(r.Context(),
			`INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id`, email, hash,
		).Scan(&uid); err != nil {
			return err
		}
		_, err := tx.Exec(r.Context(),
			`INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, 'default', $2, $3)`,
			uid, auth.DisplayPrefix(key), keyHash)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		writeError(w, http.StatusConflict, "an account with email %s exists already", email)
		return
	}
	if err != nil {
		s.dbError(w, "create the account", err)
		return
	}
	s.logger.Info("account created", "user_id", uid)
	writeJSON(w, http.StatusCreated, signupResponse{UserID: uid, Email: email, APIKey: key})
}

// withKey authenticates a request by its API key and passes the user id.
func (s *Server) withKey(next func(http.ResponseWriter, *http.Request, int64)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shortfleet"`)
			writeError(w, http.StatusUnauthorized, "send your API key as Authorization: Bearer <key>")
			return
		}
		h, err := auth.HashAPIKey(strings.TrimSpace(key))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shortfleet", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "API key is not valid")
			return
		}
		var uid int64
		err = s.db.QueryRow(r.Context(),
			`SELECT user_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`, h).Scan(&uid)
		if errors.Is(err, pgx.ErrNoRows) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shortfleet", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "API key is not valid or was revoked")
			return
		}
		if err != nil {
			s.dbError(w, "check the API key", err)
			return
		}
		next(w, r, uid)
	})
}

type createRequest struct {
	Target       string `json:"target"`
	RedirectType int    `json:"redirect_type,omitempty"`
}

// Link is a link as the API shows it.
type Link struct {
	Code         string    `json:"code"`
	ShortURL     string    `json:"short_url"`
	Target       string    `json:"target"`
	RedirectType int       `json:"redirect_type"`
	CreatedAt    time.Time `json:"created_at"`
}

func (s *Server) createLink(w http.ResponseWriter, r *http.Request, uid int64) {
	var req createRequest
	if !decode(w, r, &req) {
		return
	}
	tgt, err := target.Normalize(req.Target)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	switch req.RedirectType {
	case 0:
		req.RedirectType = http.StatusFound
	case 301, 302, 307, 308:
	default:
		writeError(w, http.StatusBadRequest, "redirect_type %d is not one of 301, 302, 307, 308", req.RedirectType)
		return
	}
	var id int64
	var created time.Time
	err = pgx.BeginFunc(r.Context(), s.db, func(tx pgx.Tx) error {
		// Ids must commit in order: see sfsql.LinkCreateLock.
		if _, err := tx.Exec(r.Context(), `SELECT pg_advisory_xact_lock($1)`, sfsql.LinkCreateLock); err != nil {
			return err
		}
		return tx.QueryRow(r.Context(),
			`INSERT INTO links (user_id, target, redirect_type) VALUES ($1, $2, $3) RETURNING id, created_at`,
			uid, tgt, req.RedirectType).Scan(&id, &created)
	})
	if err != nil {
		s.dbError(w, "create the link", err)
		return
	}
	code, err := s.codec.Encode(id)
	if err != nil {
		s.logger.Error("encode link id", "id", id, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(w, http.StatusCreated, Link{
		Code: code, ShortURL: s.cfg.ShortBase + "/" + code, Target: tgt,
		RedirectType: req.RedirectType, CreatedAt: created.UTC(),
	})
}

// HourClicks is one hour's clicks.
type HourClicks struct {
	Hour   time.Time `json:"hour"`
	Clicks int64     `json:"clicks"`
}

// Stats is the answer to GET /api/links/{code}/stats.
type Stats struct {
	Code   string       `json:"code"`
	From   *time.Time   `json:"from,omitempty"`
	To     *time.Time   `json:"to,omitempty"`
	Total  int64        `json:"total"`
	Hourly []HourClicks `json:"hourly"`
}

// ownedLink resolves a code to the id of a link the user owns. Another
// user's link is answered exactly like a missing one.
func (s *Server) ownedLink(ctx context.Context, code string, uid int64) (int64, error) {
	id, err := s.codec.DecodeString(code)
	if err != nil {
		return 0, errNoLink
	}
	var owner int64
	err = s.db.QueryRow(ctx, `SELECT user_id FROM links WHERE id = $1`, id).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && owner != uid) {
		return 0, errNoLink
	}
	return id, err
}

var errNoLink = errors.New("no such link")

func parseTimeParam(r *http.Request, name string) (*time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q is not an RFC 3339 time such as 2026-11-22T13:00:00Z", name, v)
	}
	t = t.UTC()
	return &t, nil
}

func (s *Server) linkStats(w http.ResponseWriter, r *http.Request, uid int64) {
	code := r.PathValue("code")
	from, err := parseTimeParam(r, "from")
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	to, err := parseTimeParam(r, "to")
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	id, err := s.ownedLink(r.Context(), code, uid)
	if errors.Is(err, errNoLink) {
		writeError(w, http.StatusNotFound, "you have no link with code %q", code)
		return
	}
	if err != nil {
		s.dbError(w, "look up the link", err)
		return
	}
	rows, err := s.db.Query(r.Context(), `SELECT hour, clicks FROM clicks_hourly
		WHERE link_id = $1 AND ($2::timestamptz IS NULL OR hour >= $2) AND ($3::timestamptz IS NULL OR hour < $3)
		ORDER BY hour`, id, from, to)
	if err != nil {
		s.dbError(w, "read the stats", err)
		return
	}
	st := Stats{Code: code, From: from, To: to, Hourly: []HourClicks{}}
	for rows.Next() {
		var h HourClicks
		if err := rows.Scan(&h.Hour, &h.Clicks); err != nil {
			s.dbError(w, "read the stats", err)
			return
		}
		h.Hour = h.Hour.UTC()
		st.Total += h.Clicks
		st.Hourly = append(st.Hourly, h)
	}
	if err := rows.Err(); err != nil {
		s.dbError(w, "read the stats", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
