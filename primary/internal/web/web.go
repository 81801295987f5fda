// Package web is the primary's browser UI: sign-up and log-in, the links
// overview, each link's dashboard, API keys, and the fleet page for admins.
// Pages are rendered on the server with html/template (which escapes
// everything it prints) and work without JavaScript; the charts are SVG
// drawn here. Every form carries a CSRF token; sessions are random tokens
// whose SHA-256 alone is stored.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
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

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the UI.
type Config struct {
	ShortBase string
	Policy    *target.Policy
	// Limits are shared with the API (see package limit).
	Limits limit.Limits
	// Hasher hashes the passwords of sign-ups; the zero Hasher is the
	// default costs. Give the API the same one.
	Hasher auth.Hasher
	// Secure marks cookies Secure (and names the session cookie __Host-):
	// on everywhere but plain-HTTP development.
	Secure bool
	// CSRFKey signs CSRF tokens; 32 random bytes, secret.
	CSRFKey []byte
	// Proxies are the proxies' admin URLs and ReadToken their read token,
	// for the fleet page. The read token reaches /metrics and no further:
	// the primary never holds the admin token, which reads the raw logs
	// and acknowledges them.
	Proxies   []string
	ReadToken string
	// Metrics counts log-ins, refused credentials and creations; nil: not
	// counted.
	Metrics *metrics.Metrics
}

// Server serves the UI.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	st       *store.Store
	accounts *account.Accounts
	pages    map[string]*template.Template
	client   *http.Client
}

// New returns the UI server.
func New(cfg Config, logger *slog.Logger, st *store.Store) (*Server, error) {
	cfg.ShortBase = strings.TrimRight(cfg.ShortBase, "/")
	if len(cfg.CSRFKey) < 16 {
		return nil, errors.New("web: CSRF key too short")
	}
	s := &Server{cfg: cfg, logger: logger, st: st, accounts: account.New(st, cfg.Hasher, logger), pages: map[string]*template.Template{}, client: &http.Client{Timeout: 2 * time.Second}}
	for _, p := range []string{"home", "auth", "links", "link", "keys", "fleet", "admin", "error", "tag", "account"} {
		t, err := template.New("").ParseFS(templateFS, "templates/layout.html", "templates/stats.html", "templates/"+p+".html")
		if err != nil {
			return nil, err
		}
		s.pages[p] = t
	}
	return s, nil
}

// page is what every template gets.
type page struct {
	Title        string
	User         *store.User
	CSRF         string
	Flash, Error string
	Data         any
}

func (s *Server) cookieName(base string) string {
	if s.cfg.Secure {
		return "__Host-" + base
	}
	return base
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.cfg.Secure, SameSite: http.SameSiteLaxMode})
}

// csrfToken returns the request's CSRF token, setting the cookie it is
// derived from if the browser has none: the token in a form is an HMAC of
// the cookie's random value, which a cross-site page can neither read nor
// compute.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	var seed string
	if c, err := r.Cookie(s.cookieName("sf_csrf")); err == nil && len(c.Value) >= 32 {
		seed = c.Value
	} else {
		b := make([]byte, 32)
		rand.Read(b)
		seed = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: s.cookieName("sf_csrf"), Value: seed, Path: "/", HttpOnly: true,
			Secure: s.cfg.Secure, SameSite: http.SameSiteStrictMode})
		r.AddCookie(&http.Cookie{Name: s.cookieName("sf_csrf"), Value: seed})
	}
	m := hmac.New(sha256.New, s.cfg.CSRFKey)
	m.Write([]byte(seed))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(s.cookieName("sf_csrf"))
	if err != nil || len(c.Value) < 32 {
		return false
	}
	m := hmac.New(sha256.New, s.cfg.CSRFKey)
	m.Write([]byte(c.Value))
	want := base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(want)) == 1
}

type userKey struct{}

func userOf(r *http.Request) *store.User {
	u, _ := r.Context().Value(userKey{}).(*store.User)
	return u
}

// Handler returns the UI's routes.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle("GET /static/", http.FileServerFS(staticFS))
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /signup", s.authPage("Sign up", "/signup"))
	mux.HandleFunc("POST /signup", s.form(s.signup))
	mux.HandleFunc("GET /login", s.authPage("Log in", "/login"))
	mux.HandleFunc("POST /login", s.form(s.login))
	mux.HandleFunc("POST /logout", s.form(s.logout))
	mux.HandleFunc("GET /links", s.auth(s.links))
	mux.HandleFunc("POST /links", s.form(s.auth(s.createLink)))
	mux.HandleFunc("POST /links/import", s.form(s.auth(s.importLinks)))
	mux.HandleFunc("GET /links/export.csv", s.auth(s.exportLinks))
	mux.HandleFunc("GET /links/export.json", s.auth(s.exportLinks))
	mux.HandleFunc("GET /tags/{tag}", s.auth(s.tagPage))
	mux.HandleFunc("GET /links/{code}", s.auth(s.link))
	mux.HandleFunc("POST /links/{code}", s.form(s.auth(s.editLink)))
	mux.HandleFunc("GET /links/{code}/qr.svg", s.auth(s.qr))
	mux.HandleFunc("GET /links/{code}/stats.csv", s.auth(s.statsCSV))
	mux.HandleFunc("GET /keys", s.auth(s.keys))
	mux.HandleFunc("POST /keys", s.form(s.auth(s.createKey)))
	mux.HandleFunc("POST /keys/{id}/revoke", s.form(s.auth(s.revokeKey)))
	mux.HandleFunc("GET /fleet", s.auth(s.fleet))
	mux.HandleFunc("GET /account", s.auth(s.account))
	mux.HandleFunc("POST /account/password", s.form(s.auth(s.changePassword)))
	mux.HandleFunc("POST /account/delete", s.form(s.auth(s.deleteAccount)))
	mux.HandleFunc("GET /account/export.json", s.auth(s.exportAccount))
	s.registerAdmin(mux)
}

// Session loads the session's user, if any, for every request.
func (s *Server) Session(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(s.cookieName("sf_session")); err == nil && c.Value != "" {
			if u, err := s.st.SessionUser(r.Context(), c.Value); err == nil {
				r = r.WithContext(context.WithValue(r.Context(), userKey{}, &u))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// maxForm bounds a multipart form's body: a CSV import (csvio reads at
// most MaxRows lines) and its fields; maxPlainForm every other form.
const (
	maxForm      = 16 << 20
	maxPlainForm = 64 << 10
)

// form checks the CSRF token of a form post.
func (s *Server) form(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var err error
		limit := int64(maxForm)
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			err = r.ParseMultipartForm(8 << 20)
		} else {
			limit = maxPlainForm
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			err = r.ParseForm()
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.fail(w, r, http.StatusRequestEntityTooLarge, "Too large", "This form is over "+strconv.FormatInt(limit>>10, 10)+" KiB.")
				return
			}
			s.fail(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
			return
		}
		if !s.checkCSRF(r) {
			s.cfg.Metrics.Refused(metrics.CSRF)
			s.fail(w, r, http.StatusForbidden, "Form expired", "This form's security token is missing or wrong. Go back, reload the page and try again.")
			return
		}
		next(w, r)
	}
}

// auth sends visitors without a session to the log-in page.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if userOf(r) == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+urlEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.fail(w, r, http.StatusUnauthorized, "Log in first", "Your session has ended. Log in and try again.")
			return
		}
		if userOf(r).Suspended {
			s.cfg.Metrics.Refused(metrics.Suspended)
			s.fail(w, r, http.StatusForbidden, "Account suspended", "This account is suspended by the fleet's admins: its links are off and it cannot be used.")
			return
		}
		next(w, r)
	}
}

func urlEscape(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", "+", "%2B", "?", "%3F", " ", "%20").Replace(s)
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.User = userOf(r)
	p.CSRF = s.csrfToken(w, r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		s.logger.Error("render page", "page", name, "err", err)
	}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	s.render(w, r, status, "error", page{Title: title, Data: msg})
}

func (s *Server) storeFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, sfsql.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, "Not found", "There is no such link in your account.")
	case errors.Is(err, store.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		s.fail(w, r, http.StatusServiceUnavailable, "Try again shortly", "The database is unavailable; could not "+what+".")
	default:
		s.logger.Error(what, "err", err)
		s.fail(w, r, http.StatusInternalServerError, "Something went wrong", "Could not "+what+".")
	}
}

// refuse shows a page for a request the rate limits refused: 429 with
// Retry-After, or 413 when it asked for more links at once than the limits
// ever allow.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, no *limit.Refusal, n int) {
	if no.Never {
		s.fail(w, r, http.StatusRequestEntityTooLarge, "Too many links at once",
			"This file holds "+strconv.Itoa(n)+" links; the limit on "+no.What+" allows at most "+strconv.Itoa(no.Max)+" at once. Split the file and import the parts one after the other.")
		return
	}
	secs := no.RetrySeconds()
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.fail(w, r, http.StatusTooManyRequests, "Slow down", "Too many "+no.What+". Try again in "+strconv.Itoa(secs)+" s.")
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	if userOf(r) != nil {
		http.Redirect(w, r, "/links", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "home", page{Title: "shortfleet"})
}

// authData fills the sign-up and log-in form. Next is where log-in leads
// afterwards: the form posts it back in a hidden field, since the form's
// action is a bare /login that would drop the page's ?next=.
type authData struct{ Action, Email, Next string }

func (s *Server) authPage(title, action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data := authData{Action: action}
		if action == "/login" {
			data.Next = formNext(r.URL.Query().Get("next"))
		}
		s.render(w, r, http.StatusOK, "auth", page{Title: title, Data: data})
	}
}

// formNext is the next the log-in form carries: a safe one, or none, so a
// page never echoes a path safeNext would refuse.
func formNext(next string) string {
	if next == "" || safeNext(next) != next {
		return ""
	}
	return next
}

// startSession logs a user in with a new session token (a new token at
// every log-in: a token planted before it is worthless).
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u store.User) bool {
	if c, err := r.Cookie(s.cookieName("sf_session")); err == nil {
		s.st.DeleteSession(r.Context(), c.Value)
	}
	token, err := s.st.CreateSession(r.Context(), u.ID)
	if err != nil {
		s.storeFail(w, r, "log you in", err)
		return false
	}
	s.setCookie(w, "sf_session", token, int(store.SessionTTL.Seconds()))
	return true
}

// safeNext is where to go after log-in: a path on this site, or /links.
// Browsers drop tabs and newlines from a URL and read a backslash as a
// slash, so "/\t/evil.example" or "/\\evil.example" would leave the site: a
// path holding any control character or backslash is refused whole.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/links"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/links"
		}
	}
	return next
}

func (s *Server) signup(w http.ResponseWriter, r *http.Request) {
	data := authData{Action: "/signup", Email: r.PostFormValue("email")}
	if no := s.cfg.Limits.Signup(s.cfg.Limits.Client(r)); no != nil {
		s.refuse(w, r, no, 0)
		return
	}
	u, _, f := s.accounts.SignUp(r.Context(), r.PostFormValue("email"), r.PostFormValue("password"))
	switch {
	case f == nil:
	case f.Status == http.StatusBadRequest:
		s.render(w, r, f.Status, "auth", page{Title: "Sign up", Error: f.Message, Data: data})
		return
	case f.Status == http.StatusConflict:
		s.render(w, r, f.Status, "auth", page{Title: "Sign up", Error: "An account with this email exists already. Log in instead.", Data: data})
		return
	case f.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
		s.fail(w, r, f.Status, "Try again shortly", "The database is unavailable; could not create your account.")
		return
	default: // the cause is logged
		s.fail(w, r, f.Status, "Something went wrong", "Could not create your account.")
		return
	}
	if s.startSession(w, r, u) {
		http.Redirect(w, r, "/links", http.StatusSeeOther)
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	// The form's hidden field, or ?next= on the post's own URL (FormValue
	// prefers the body); safeNext checks it either way.
	next := r.FormValue("next")
	data := authData{Action: "/login", Email: email, Next: formNext(next)}
	if no := s.cfg.Limits.Login(s.cfg.Limits.Client(r), email); no != nil {
		s.refuse(w, r, no, 0)
		return
	}
	u, err := s.st.Login(r.Context(), email, r.PostFormValue("password"))
	switch {
	case errors.Is(err, store.ErrUnknownAccount):
		s.cfg.Metrics.Refused(metrics.UnknownAccount)
	case errors.Is(err, store.ErrBadLogin):
		s.cfg.Metrics.Refused(metrics.BadPassword)
	case errors.Is(err, store.ErrSuspended):
		s.cfg.Metrics.Refused(metrics.Suspended)
	}
	if errors.Is(err, store.ErrBadLogin) {
		s.render(w, r, http.StatusUnauthorized, "auth", page{Title: "Log in", Error: "Wrong email or password.", Data: data})
		return
	}
	if errors.Is(err, store.ErrSuspended) {
		s.render(w, r, http.StatusForbidden, "auth", page{Title: "Log in", Error: "This account is suspended by the fleet's admins; you cannot log in.", Data: data})
		return
	}
	if err != nil {
		s.storeFail(w, r, "log you in", err)
		return
	}
	if s.startSession(w, r, u) {
		s.cfg.Metrics.LoggedIn()
		http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
	}
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.cookieName("sf_session")); err == nil {
		s.st.DeleteSession(r.Context(), c.Value)
	}
	s.setCookie(w, "sf_session", "", -1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type linksData struct {
	Links                   []store.Link
	Query, Sort, Tag        string
	Tags                    []store.TagCount
	Page, Prev, Next, Total int
	More                    bool
	Created                 *linkreq.LinkJSON
	Form                    url.Values // a refused creation's fields, shown again
}

func (s *Server) linksPage(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string, created *linkreq.LinkJSON) {
	o, err := linkreq.ListFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Bad tag", err.Error())
		return
	}
	o.PerPage = 50
	links, total, err := s.st.ListLinks(r.Context(), userOf(r).ID, o)
	if err != nil {
		s.storeFail(w, r, "list your links", err)
		return
	}
	tags, err := s.st.UserTags(r.Context(), userOf(r).ID)
	if err != nil {
		s.storeFail(w, r, "list your tags", err)
		return
	}
	page1 := max(o.Page, 1)
	d := linksData{Links: links, Query: o.Query, Sort: o.Sort, Tag: o.Tag, Tags: tags, Page: page1, Prev: page1 - 1, Next: page1 + 1, Total: total,
		More: page1*50 < total, Created: created}
	if errMsg != "" && r.Method == http.MethodPost {
		d.Form = r.PostForm
	}
	s.render(w, r, status, "links", page{Title: "Links", Flash: flash, Error: errMsg, Data: d})
}

func (s *Server) links(w http.ResponseWriter, r *http.Request) {
	s.linksPage(w, r, http.StatusOK, "", "", nil)
}

func (s *Server) createLink(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	if no := s.cfg.Limits.Create(s.cfg.Limits.Client(r), u.ID, 1); no != nil {
		s.refuse(w, r, no, 1)
		return
	}
	rt, _ := strconv.Atoi(r.PostFormValue("redirect_type"))
	n, err := linkreq.CheckNew(s.cfg.Policy, r.PostFormValue("target"), strings.TrimSpace(r.PostFormValue("alias")), rt)
	if err == nil {
		n.Tags, err = linkreq.ParseTags(linkreq.SplitTags(r.PostFormValue("tags")))
		if err == nil {
			var in linkreq.FeaturesIn
			if in, err = readFeatures(r); err == nil {
				n.Features, err = linkreq.CheckFeatures(s.cfg.Policy, in, time.Now())
			}
		}
	}
	if err != nil {
		s.linksPage(w, r, http.StatusBadRequest, "", err.Error(), nil)
		return
	}
	l, err := s.st.CreateLink(r.Context(), u.ID, n)
	if errors.Is(err, store.ErrAliasTaken) {
		s.linksPage(w, r, http.StatusConflict, "", "That alias is taken.", nil)
		return
	}
	if err != nil {
		s.storeFail(w, r, "create the link", err)
		return
	}
	s.cfg.Metrics.Created(metrics.SourceWeb, 1)
	j := linkreq.Show(s.cfg.ShortBase, l)
	s.linksPage(w, r, http.StatusCreated, "", "", &j)
}

func (s *Server) importLinks(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	f, _, err := r.FormFile("file")
	if err != nil {
		s.linksPage(w, r, http.StatusBadRequest, "", "Choose a CSV file to import.", nil)
		return
	}
	defer f.Close()
	rows, errs := csvio.ParseBulk(f)
	// Charged one event a link in the file, all at once, as the API's bulk
	// creation is: an import is no way around the creation limits.
	if no := s.cfg.Limits.Create(s.cfg.Limits.Client(r), u.ID, len(rows)); no != nil {
		s.refuse(w, r, no, len(rows))
		return
	}
	var ns []store.NewLink
	for _, row := range rows {
		n, err := linkreq.CheckNew(s.cfg.Policy, row.Target, row.Alias, row.RedirectType)
		if err != nil {
			errs = append(errs, errors.New("line "+strconv.Itoa(row.Line)+": "+err.Error()))
			continue
		}
		ns = append(ns, n)
	}
	if len(errs) > 0 || len(ns) == 0 {
		msg := "The file holds no links."
		if len(errs) > 0 {
			msg = "Nothing was imported. " + errors.Join(errs...).Error()
		}
		s.linksPage(w, r, http.StatusBadRequest, "", msg, nil)
		return
	}
	if _, err := s.st.CreateLinks(r.Context(), u.ID, ns); err != nil {
		if errors.Is(err, store.ErrAliasTaken) {
			s.linksPage(w, r, http.StatusConflict, "", "An alias in the file is taken; nothing was imported.", nil)
			return
		}
		s.storeFail(w, r, "import the links", err)
		return
	}
	s.cfg.Metrics.Created(metrics.SourceWebBulk, len(ns))
	s.linksPage(w, r, http.StatusCreated, strconv.Itoa(len(ns))+" links imported.", "", nil)
}

func (s *Server) exportLinks(w http.ResponseWriter, r *http.Request) {
	o, err := linkreq.ListFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Bad tag", err.Error())
		return
	}
	asJSON := strings.HasSuffix(r.URL.Path, ".json")
	if err := linkreq.Export(r.Context(), s.st, userOf(r).ID, s.cfg.ShortBase, o.Tag, asJSON, w); err != nil {
		s.storeFail(w, r, "export your links", err)
	}
}

type topBlock struct {
	Title  string
	Values []sfsql.ValueCount
}

type linkData struct {
	Link               store.Link
	ShortURL, AliasURL string
	Stats              store.Stats
	BotPercent         float64
	Chart              template.HTML
	Tops               []topBlock
	Range              string
	Ranges             []string
	Types              []int
	// TagsTyped is what a refused tag form held, shown again to fix.
	TagsTyped string
	Stopped   string // why the link does not redirect
	// The edit form's values: the link's, or what a refused edit sent.
	EditTarget, ExpiresValue, MaxClicksValue, RulesText string
	ForwardQuery                                        bool
}

var topTitles = map[string]string{sfsql.DimReferrer: "Referrers", sfsql.DimCountry: "Countries", sfsql.DimBrowser: "Browsers",
	sfsql.DimOS: "Operating systems", sfsql.DimDevice: "Devices", sfsql.DimLanguage: "Languages"}

func (s *Server) link(w http.ResponseWriter, r *http.Request) {
	s.linkPage(w, r, http.StatusOK, "", "")
}

func (s *Server) linkPage(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string) {
	u := userOf(r)
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
	l, err := s.st.GetLink(r.Context(), u.ID, r.PathValue("code"))
	if err != nil {
		s.storeFail(w, r, "read the link", err)
		return
	}
	st, err := s.st.LinkStats(r.Context(), l.ID, from, to, gran)
	if err != nil {
		s.storeFail(w, r, "read the stats", err)
		return
	}
	d := linkData{Link: l, ShortURL: s.cfg.ShortBase + "/" + l.Code, Stats: st, BotPercent: 100 * st.BotShare(),
		Chart: Chart(st), Range: rng, Ranges: []string{"24h", "48h", "7d", "30d", "90d", "365d"}, Types: []int{302, 301, 307, 308},
		Stopped: stopText(l)}
	d.editValues(r, errMsg)
	if l.Alias != "" {
		d.AliasURL = s.cfg.ShortBase + "/" + l.Alias
	}
	if r.Method == http.MethodPost && r.PostFormValue("action") == "tags" {
		d.TagsTyped = r.PostFormValue("tags")
	}
	for _, name := range sfsql.DimNames {
		d.Tops = append(d.Tops, topBlock{Title: topTitles[name], Values: st.Top[name]})
	}
	s.render(w, r, status, "link", page{Title: "Link " + l.Code, Flash: flash, Error: errMsg, Data: d})
}

func (s *Server) editLink(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	var p store.Patch
	switch r.PostFormValue("action") {
	case "tags":
		tags, err := linkreq.ParseTags(linkreq.SplitTags(r.PostFormValue("tags")))
		if err != nil {
			s.linkPage(w, r, http.StatusBadRequest, "", err.Error())
			return
		}
		if _, err := s.st.SetTags(r.Context(), u.ID, r.PathValue("code"), tags); err != nil {
			if errors.Is(err, store.ErrTooManyTags) {
				s.linkPage(w, r, http.StatusBadRequest, "", err.Error())
				return
			}
			s.storeFail(w, r, "change the link's tags", err)
			return
		}
		http.Redirect(w, r, "/links/"+urlEscape(r.PathValue("code")), http.StatusSeeOther)
		return
	case "disable", "enable":
		v := r.PostFormValue("action") == "disable"
		p.Disabled = &v
	case "edit":
		t, err := s.cfg.Policy.Check(r.PostFormValue("target"))
		if err != nil {
			s.linkPage(w, r, http.StatusBadRequest, "", err.Error())
			return
		}
		p.Target = &t
		if err := s.readFeaturePatch(r, &p.FeaturePatch); err != nil {
			s.linkPage(w, r, http.StatusBadRequest, "", err.Error())
			return
		}
		rt, _ := strconv.Atoi(r.PostFormValue("redirect_type"))
		switch rt {
		case 301, 302, 307, 308:
			p.RedirectType = &rt
		default:
			s.linkPage(w, r, http.StatusBadRequest, "", "Choose a redirect type: 301, 302, 307 or 308.")
			return
		}
	default:
		s.fail(w, r, http.StatusBadRequest, "Bad request", "Unknown action.")
		return
	}
	if _, err := s.st.UpdateLink(r.Context(), u.ID, r.PathValue("code"), p); errors.Is(err, store.ErrTakenDown) {
		s.linkPage(w, r, http.StatusConflict, "", "This link was taken down by the fleet's admins; it cannot be re-enabled.")
		return
	} else if err != nil {
		s.storeFail(w, r, "change the link", err)
		return
	}
	http.Redirect(w, r, "/links/"+urlEscape(r.PathValue("code")), http.StatusSeeOther)
}

func (s *Server) qr(w http.ResponseWriter, r *http.Request) {
	l, err := s.st.GetLink(r.Context(), userOf(r).ID, r.PathValue("code"))
	if err != nil {
		s.storeFail(w, r, "read the link", err)
		return
	}
	svg, err := QR(s.cfg.ShortBase + "/" + l.Code)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "Something went wrong", "Could not draw the QR code.")
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "private, max-age=86400")
	w.Write(svg)
}

func (s *Server) statsCSV(w http.ResponseWriter, r *http.Request) {
	from, to, gran, err := linkreq.StatsRange(r.URL.Query(), time.Now())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "Bad range", err.Error())
		return
	}
	l, err := s.st.GetLink(r.Context(), userOf(r).ID, r.PathValue("code"))
	if err != nil {
		s.storeFail(w, r, "read the link", err)
		return
	}
	st, err := s.st.LinkStats(r.Context(), l.ID, from, to, gran)
	if err != nil {
		s.storeFail(w, r, "read the stats", err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+l.Code+`-stats.csv"`)
	csvio.WriteStats(w, st, sfsql.DimNames)
}

type keysData struct {
	Keys   []store.Key
	NewKey string
}

func (s *Server) keysPage(w http.ResponseWriter, r *http.Request, status int, newKey, errMsg string) {
	keys, err := s.st.ListKeys(r.Context(), userOf(r).ID)
	if err != nil {
		s.storeFail(w, r, "list your keys", err)
		return
	}
	s.render(w, r, status, "keys", page{Title: "API keys", Error: errMsg, Data: keysData{Keys: keys, NewKey: newKey}})
}

func (s *Server) keys(w http.ResponseWriter, r *http.Request) {
	s.keysPage(w, r, http.StatusOK, "", "")
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" || len(name) > 100 {
		s.keysPage(w, r, http.StatusBadRequest, "", "A key needs a name of 1 to 100 characters.")
		return
	}
	scope := r.PostFormValue("scope")
	if scope == "" {
		scope = store.ScopeWrite
	}
	if scope != store.ScopeRead && scope != store.ScopeWrite {
		s.keysPage(w, r, http.StatusBadRequest, "", "Choose the key's scope: read (list, read and export) or write (everything).")
		return
	}
	key, _, err := s.st.CreateKey(r.Context(), userOf(r).ID, name, scope)
	if err != nil {
		s.storeFail(w, r, "create the key", err)
		return
	}
	s.keysPage(w, r, http.StatusCreated, key, "")
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err := s.st.RevokeKey(r.Context(), userOf(r).ID, id); err != nil {
		s.storeFail(w, r, "revoke the key", err)
		return
	}
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
}

// SecurityHeaders sets the headers every page carries.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
