// Package store is the primary's database access: accounts, sessions, API
// keys, links and the stats its pages and API read. Link creation goes
// through a group-commit writer (see creator.go).
package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"

	"shortfleet/primary/internal/auth"
	sfsql "shortfleet/sql"
	"shortfleet/sql/codes"
)

// Errors callers branch on. A row asked for that does not exist, or is
// another user's, is sfsql.ErrNotFound: the one the proxies branch on too.
var (
	ErrEmailTaken  = errors.New("an account with this email exists already")
	ErrAliasTaken  = errors.New("this alias is taken")
	ErrUnavailable = errors.New("the database is unavailable")
	ErrBadLogin    = errors.New("wrong email or password")
	// ErrUnknownAccount is the ErrBadLogin of an email no account has,
	// with the same message: answer it as ErrBadLogin, which it wraps, so
	// the answer tells nothing about the account. It is told apart only
	// for /metrics (refusals by reason).
	ErrUnknownAccount = fmt.Errorf("%w", ErrBadLogin)
)

// User is an account.
type User struct {
	ID      int64
	Email   string
	IsAdmin bool
	// KeyScope is the scope of the API key the user came by (ScopeRead or
	// ScopeWrite); empty for a session.
	KeyScope string
	// Suspended accounts are refused by the front ends (see SuspendUser).
	Suspended bool
}

// API key scopes: a read key lists, reads and exports; a write key does
// everything, as every key did before scopes.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// Store reaches the primary database.
type Store struct {
	db      *pgxpool.Pool
	codec   *codes.Codec
	logger  *slog.Logger
	creator *creator
	// keys caches API key hash -> user, so an API call costs no round trip
	// to check its key. Revoking a key empties it.
	keys *otter.Cache[string, User]
	// A lookup that read a key as live before a revocation committed
	// must not put it in the cache after the revocation emptied it, or
	// the revoked key would work for keyCacheTTL more. keyEpoch counts
	// revocations: a lookup fills the cache only if no revocation came
	// since before its read. keyFill is held for reading while a lookup
	// checks the epoch and fills, and for writing while a revocation
	// moves the epoch and empties the cache, so no fill falls between
	// the two.
	keyFill  sync.RWMutex
	keyEpoch uint64
	// afterKeyRead, when set (by tests), runs when a lookup has read its
	// key from the database and is about to fill the cache: the moment a
	// revocation can come between.
	afterKeyRead func()
	// stopWatch stops watchCredentials; credSeen is the credential epoch
	// it read last, -1 before the first read.
	stopWatch chan struct{}
	credSeen  atomic.Int64
	// dbErrors counts classify's errors by class, for /metrics.
	dbErrors [7]atomic.Uint64
}

// keyCacheTTL bounds how long a key's user is remembered.
const keyCacheTTL = 30 * time.Second

// New returns a Store; Close stops its link writer.
func New(db *pgxpool.Pool, codec *codes.Codec, logger *slog.Logger) *Store {
	s := &Store{db: db, codec: codec, logger: logger}
	s.keys = otter.Must(&otter.Options[string, User]{MaximumSize: 100_000,
		ExpiryCalculator: otter.ExpiryWriting[string, User](keyCacheTTL)})
	s.creator = newCreator(s)
	s.stopWatch = make(chan struct{})
	s.credSeen.Store(-1)
	go s.watchCredentials(s.stopWatch)
	return s
}

// Close stops the link writer after the links it holds are written.
func (s *Store) Close() {
	close(s.stopWatch)
	s.creator.close()
}

// DB is the pool, for health checks.
func (s *Store) DB() *pgxpool.Pool { return s.db }

// Codec is the code permutation.
func (s *Store) Codec() *codes.Codec { return s.codec }

// DB error classes, as /metrics counts them
// (shortfleet_app_db_errors_total{class}). The first five are what
// classify turns into ErrUnavailable, but for a network error, which is
// "connection" too.
var ErrorClasses = []string{"connection", "operator_intervention", "insufficient_resources",
	"transaction_rollback", "read_only", "canceled", "other"}

// errorClass names err's class, an index into ErrorClasses; -1 for no
// error and for ErrNotFound, an answer rather than an error.
func errorClass(err error) int {
	if err == nil || errors.Is(err, sfsql.ErrNotFound) {
		return -1
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return 0
		// operator intervention: shut down, crashed, starting, a query
		// cancelled (by a statement timeout, or a backend ended while a
		// failover demotes the primary)
		case strings.HasPrefix(pgErr.Code, "57"):
			return 1
		case strings.HasPrefix(pgErr.Code, "53"): // insufficient resources: too many connections, disk full
			return 2
		case strings.HasPrefix(pgErr.Code, "40"): // rolled back: serialization failure, deadlock
			return 3
		case pgErr.Code == "25006": // read-only: a standby, mid-failover
			return 4
		}
		return 6
	}
	// A failed connection attempt wraps its dial's error, a timeout
	// (connect_timeout's deadline) among them: the database did not
	// answer, which is not the client leaving. In a failover drill the
	// multi-host DSN found every host read-only or silent this way, and the
	// creation got a 500.
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) && !errors.Is(err, context.Canceled) {
		return 0
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 5 // the client went away, or a deadline of ours passed
	}
	return 0 // no answer from the database: refused, reset, timed out
}

// classify turns a database error into ErrUnavailable when the database
// could not be reached, keeping the detail for the log, and counts it by
// class.
func (s *Store) classify(err error) error {
	c := errorClass(err)
	if c < 0 {
		return err
	}
	s.dbErrors[c].Add(1)
	if c <= 4 {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// DBErrors is how many database errors the store met, by class (see
// ErrorClasses), since it started.
func (s *Store) DBErrors() map[string]uint64 {
	m := make(map[string]uint64, len(ErrorClasses))
	for i, c := range ErrorClasses {
		m[c] = s.dbErrors[i].Load()
	}
	return m
}

func isUnique(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// CreateUser makes an account with a first API key, named "default", and
// returns the key, which is not stored.
func (s *Store) CreateUser(ctx context.Context, email, passwordHash string) (User, string, error) {
	key, err := auth.NewAPIKey()
	if err != nil {
		return User{}, "", err
	}
	keyHash, _ := auth.HashAPIKey(key)
	u := User{Email: email}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id, is_admin`,
			email, passwordHash).Scan(&u.ID, &u.IsAdmin); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, 'default', $2, $3)`,
			u.ID, auth.DisplayPrefix(key), keyHash)
		return err
	})
	if isUnique(err) {
		return User{}, "", ErrEmailTaken
	}
	return u, key, s.classify(err)
}

// dummyHash is checked against when the email is unknown, so a log-in
// takes as long whether or not the account exists.
var dummyHash, _ = auth.HashPassword("not a real password, only timing")

// Login checks an email and password.
func (s *Store) Login(ctx context.Context, email, password string) (User, error) {
	u := User{Email: email}
	var hash string
	err := s.db.QueryRow(ctx, `SELECT id, password_hash, is_admin, suspended_at IS NOT NULL FROM users WHERE email = $1`,
		email).Scan(&u.ID, &hash, &u.IsAdmin, &u.Suspended)
	if errors.Is(err, pgx.ErrNoRows) {
		auth.CheckPassword(password, dummyHash)
		return User{}, ErrUnknownAccount
	}
	if err != nil {
		return User{}, s.classify(err)
	}
	ok, err := auth.CheckPassword(password, hash)
	if err != nil || !ok {
		return User{}, ErrBadLogin
	}
	if u.Suspended { // told only to who knows the password
		return User{}, ErrSuspended
	}
	return u, nil
}

// SetAdmin grants or takes admin rights.
func (s *Store) SetAdmin(ctx context.Context, email string, admin bool) error {
	tag, err := s.db.Exec(ctx, `UPDATE users SET is_admin = $2 WHERE email = $1`, email, admin)
	if err != nil {
		return s.classify(err)
	}
	if tag.RowsAffected() == 0 {
		return sfsql.ErrNotFound
	}
	return nil
}

// SessionTTL is how long a session lasts.
const SessionTTL = 14 * 24 * time.Hour

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// CreateSession starts a session and returns its token, which only the
// cookie holds.
func (s *Store) CreateSession(ctx context.Context, uid int64) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	_, err := s.db.Exec(ctx, `INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, now() + $3::interval)`,
		uid, hashToken(token), SessionTTL.String())
	return token, s.classify(err)
}

// SessionUser returns the user of a live session.
func (s *Store) SessionUser(ctx context.Context, token string) (User, error) {
	var u User
	err := s.db.QueryRow(ctx, `SELECT u.id, u.email, u.is_admin, u.suspended_at IS NOT NULL FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > now()`, hashToken(token)).Scan(&u.ID, &u.Email, &u.IsAdmin, &u.Suspended)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, sfsql.ErrNotFound
	}
	return u, s.classify(err)
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1 OR expires_at < now()`, hashToken(token))
	return s.classify(err)
}

// Key is an API key as listed: never the key itself.
type Key struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used_at,omitempty"`
	Revoked   *time.Time `json:"revoked_at,omitempty"`
	Scope     string     `json:"scope"`
}

// CreateKey makes an API key of scope ScopeRead or ScopeWrite and returns
// it; only its hash is stored.
func (s *Store) CreateKey(ctx context.Context, uid int64, name, scope string) (string, Key, error) {
	if scope != ScopeRead && scope != ScopeWrite {
		return "", Key{}, fmt.Errorf("create key: scope %q is not %s or %s", scope, ScopeRead, ScopeWrite)
	}
	key, err := auth.NewAPIKey()
	if err != nil {
		return "", Key{}, err
	}
	h, _ := auth.HashAPIKey(key)
	k := Key{Name: name, Prefix: auth.DisplayPrefix(key), Scope: scope}
	err = s.db.QueryRow(ctx, `INSERT INTO api_keys (user_id, name, prefix, key_hash, scope) VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at`,
		uid, name, k.Prefix, h, scope).Scan(&k.ID, &k.CreatedAt)
	return key, k, s.classify(err)
}

// ListKeys lists a user's keys, newest first.
func (s *Store) ListKeys(ctx context.Context, uid int64) ([]Key, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, prefix, created_at, last_used_at, revoked_at, scope FROM api_keys
		WHERE user_id = $1 ORDER BY id DESC`, uid)
	if err != nil {
		return nil, s.classify(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) {
		var k Key
		err := r.Scan(&k.ID, &k.Name, &k.Prefix, &k.CreatedAt, &k.LastUsed, &k.Revoked, &k.Scope)
		return k, err
	})
}

// RevokeKey revokes one of a user's keys.
func (s *Store) RevokeKey(ctx context.Context, uid, id int64) error {
	var tag pgconn.CommandTag
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		tag, err = tx.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND user_id = $2`, id, uid)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		// The other app instances empty their key caches within a
		// second (credentialPoll), not when their entry expires.
		return bumpCredentials(ctx, tx)
	})
	if err != nil {
		return s.classify(err)
	}
	// Committed: from now on every read sees the key revoked. Lookups
	// that read before it must not fill the cache (see keyEpoch).
	s.forgetKeys()
	if tag.RowsAffected() == 0 {
		return sfsql.ErrNotFound
	}
	return nil
}

// forgetKeys empties the key cache after keys were revoked or deleted
// (committed), so that no lookup that read them live before fills it again.
func (s *Store) forgetKeys() {
	s.keyFill.Lock()
	s.keyEpoch++
	s.keys.InvalidateAll() // revocations are rare; the next calls re-check
	s.keyFill.Unlock()
}

// KeyUser returns the user an API key belongs to, unless revoked, with
// the key's scope in KeyScope.
func (s *Store) KeyUser(ctx context.Context, key string) (_ User, err error) {
	h, err := auth.HashAPIKey(key)
	if err != nil {
		return User{}, sfsql.ErrNotFound
	}
	if u, ok := s.keys.GetIfPresent(string(h)); ok {
		return u, nil
	}
	s.keyFill.RLock()
	epoch := s.keyEpoch // before the read: a revocation after it moves it
	s.keyFill.RUnlock()
	var u User
	defer func() {
		if err != nil {
			return
		}
		if s.afterKeyRead != nil {
			s.afterKeyRead()
		}
		s.keyFill.RLock()
		if s.keyEpoch == epoch {
			s.keys.Set(string(h), u)
		}
		s.keyFill.RUnlock()
	}()
	err = s.db.QueryRow(ctx, `UPDATE api_keys k SET last_used_at = now() FROM users u
		WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.id = k.user_id
		  AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
		RETURNING u.id, u.email, u.is_admin, k.scope, u.suspended_at IS NOT NULL`, h).Scan(&u.ID, &u.Email, &u.IsAdmin, &u.KeyScope, &u.Suspended)
	if errors.Is(err, pgx.ErrNoRows) {
		// Used within the minute (no write needed), or not a live key.
		err = s.db.QueryRow(ctx, `SELECT u.id, u.email, u.is_admin, k.scope, u.suspended_at IS NOT NULL FROM api_keys k JOIN users u ON u.id = k.user_id
			WHERE k.key_hash = $1 AND k.revoked_at IS NULL`, h).Scan(&u.ID, &u.Email, &u.IsAdmin, &u.KeyScope, &u.Suspended)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, sfsql.ErrNotFound
	}
	return u, s.classify(err)
}

// Link is a link as its owner sees it.
type Link struct {
	ID           int64     `json:"-"`
	Code         string    `json:"code"`
	Alias        string    `json:"alias,omitempty"`
	Target       string    `json:"target"`
	RedirectType int       `json:"redirect_type"`
	Disabled     bool      `json:"disabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Clicks       int64     `json:"clicks"`
	Tags         []string  `json:"tags"`
	// TakedownReason says why an admin took the link down; empty if not.
	TakedownReason string `json:"takedown_reason,omitempty"`
	Features
}

// NewLink is what creating a link takes.
type NewLink struct {
	Target       string
	Alias        string
	RedirectType int
	// Tags are checked already (linkreq.ParseTags), at most MaxTags.
	Tags     []string
	Features NewFeatures
}

func (s *Store) code(id int64) string {
	c, _ := s.codec.Encode(id)
	return c
}

// CreateLink creates a link. Links without an alias are written by the
// group-commit writer with others arriving at the same moment.
func (s *Store) CreateLink(ctx context.Context, uid int64, n NewLink) (Link, error) {
	if n.RedirectType == 0 {
		n.RedirectType = 302
	}
	if n.Alias == "" {
		return s.creator.create(ctx, uid, n)
	}
	links, err := s.CreateLinks(ctx, uid, []NewLink{n})
	if err != nil {
		return Link{}, err
	}
	return links[0], nil
}

// CreateLinks creates links in one transaction: all or none.
func (s *Store) CreateLinks(ctx context.Context, uid int64, ns []NewLink) ([]Link, error) {
	var out []Link
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		out, err = insertLinks(ctx, tx, uid, ns, s.code)
		return err
	})
	if isUnique(err) {
		return nil, ErrAliasTaken
	}
	return out, s.classify(err)
}

// insertLinks inserts links under the creation lock, ids drawn in order.
func insertLinks(ctx context.Context, tx pgx.Tx, uid int64, ns []NewLink, code func(int64) string) ([]Link, error) {
	// Ids must commit in order: see sfsql.LinkCreateLock.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sfsql.LinkCreateLock); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT nextval('link_id_seq') FROM generate_series(1, $1)`, len(ns))
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	users := make([]int64, len(ns))
	targets := make([]string, len(ns))
	types := make([]int16, len(ns))
	f := newFeatureArrays(len(ns))
	for i, n := range ns {
		users[i], targets[i], types[i] = uid, n.Target, int16(n.RedirectType)
		if types[i] == 0 {
			types[i] = 302
		}
		if err := f.set(i, n.Features); err != nil {
			return nil, err
		}
	}
	var created time.Time
	if err := tx.QueryRow(ctx, `WITH ins AS (INSERT INTO links (id, user_id, target, redirect_type,
			expires_at, max_clicks, forward_query, rules, password_hash)
			SELECT i, u, t, r, e, m, f, g::jsonb, p FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::smallint[],
				$5::timestamptz[], $6::bigint[], $7::boolean[], $8::text[], $9::text[]) AS x(i, u, t, r, e, m, f, g, p)
			RETURNING created_at)
		SELECT coalesce(max(created_at), now()) FROM ins`, ids, users, targets, types,
		f.expires, f.maxClicks, f.forward, f.rules, f.passwords).Scan(&created); err != nil {
		return nil, err
	}
	out := make([]Link, len(ns))
	for i, n := range ns {
		out[i] = Link{ID: ids[i], Code: code(ids[i]), Alias: n.Alias, Target: n.Target, RedirectType: int(types[i]),
			CreatedAt: created.UTC(), UpdatedAt: created.UTC(), Tags: slices.Clip(append([]string{}, n.Tags...)), Features: n.Features.shown()}
		if n.Alias != "" {
			if _, err := tx.Exec(ctx, `INSERT INTO aliases (alias, link_id) VALUES ($1, $2)`, n.Alias, ids[i]); err != nil {
				return nil, err
			}
		}
		if len(n.Tags) > 0 {
			if err := insertTags(ctx, tx, ids[i], n.Tags); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// MaxPage is the largest page ListLinks reads; a larger one is read as it.
const MaxPage = 1 << 20

// ListOptions select and order a user's links.
type ListOptions struct {
	Query   string // substring of target or alias
	Tag     string // only links carrying this tag, if set
	Sort    string // "new" (default), "old", "clicks"
	Page    int    // from 1
	PerPage int    // default 50, at most 500
}

// normalized puts the options from a query string within bounds.
func (o ListOptions) normalized() ListOptions {
	if o.PerPage <= 0 || o.PerPage > 500 {
		o.PerPage = 50
	}
	if o.Page < 1 {
		o.Page = 1
	}
	if o.Page > MaxPage {
		// Beyond any account's links; and (Page-1)*PerPage must not
		// overflow into a negative OFFSET.
		o.Page = MaxPage
	}
	return o
}

// ListLinks returns a page of a user's links, with their clicks, and how
// many match in all.
func (s *Store) ListLinks(ctx context.Context, uid int64, o ListOptions) ([]Link, int, error) {
	o = o.normalized()
	order := "l.id DESC"
	switch o.Sort {
	case "old":
		order = "l.id ASC"
	case "clicks":
		order = "clicks DESC, l.id DESC"
	}
	pattern := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(o.Query) + "%"
	rows, err := s.db.Query(ctx, `SELECT l.id, coalesce(a.alias, ''), l.target, l.redirect_type, l.disabled, l.created_at, l.updated_at,
			coalesce(l.takedown_reason, ''),
			coalesce((SELECT sum(clicks) FROM link_daily d WHERE d.link_id = l.id), 0) AS clicks,
			count(*) OVER (), `+featureCols+`
		FROM links l LEFT JOIN LATERAL (SELECT alias FROM aliases WHERE link_id = l.id ORDER BY alias LIMIT 1) a ON true
		WHERE l.user_id = $1 AND ($2 = '' OR l.target ILIKE $3 OR a.alias ILIKE $3)
		  AND ($6 = '' OR EXISTS (SELECT 1 FROM link_tags t WHERE t.link_id = l.id AND t.tag = $6))
		ORDER BY `+order+` LIMIT $4 OFFSET $5`, uid, o.Query, pattern, o.PerPage, (o.Page-1)*o.PerPage, o.Tag)
	if err != nil {
		return nil, 0, s.classify(err)
	}
	var out []Link
	total := 0
	for rows.Next() {
		var l Link
		var rt int16
		var fs featureScan
		if err := rows.Scan(append([]any{&l.ID, &l.Alias, &l.Target, &rt, &l.Disabled, &l.CreatedAt, &l.UpdatedAt, &l.TakedownReason, &l.Clicks, &total},
			fs.dests(&l.Features)...)...); err != nil {
			return nil, 0, s.classify(err)
		}
		if err := fs.finish(l.Disabled, time.Now()); err != nil {
			return nil, 0, err
		}
		l.RedirectType, l.Code = int(rt), s.code(l.ID)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, s.classify(err)
	}
	if err := s.fillTags(ctx, out); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// Resolve turns a code or alias into the id of a link the user owns.
// Another user's link is sfsql.ErrNotFound, exactly like a missing one.
func (s *Store) Resolve(ctx context.Context, uid int64, codeOrAlias string) (int64, error) {
	var id int64
	var owner *int64 // nil for a deleted account's tombstone
	var err error
	if cid, derr := s.codec.DecodeString(codeOrAlias); derr == nil {
		id = cid
		err = s.db.QueryRow(ctx, `SELECT user_id FROM links WHERE id = $1`, id).Scan(&owner)
	} else {
		err = s.db.QueryRow(ctx, `SELECT l.id, l.user_id FROM aliases a JOIN links l ON l.id = a.link_id WHERE a.alias = $1`,
			codeOrAlias).Scan(&id, &owner)
	}
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (owner == nil || *owner != uid)) {
		return 0, sfsql.ErrNotFound
	}
	return id, s.classify(err)
}

// GetLink returns one of the user's links.
func (s *Store) GetLink(ctx context.Context, uid int64, codeOrAlias string) (Link, error) {
	id, err := s.Resolve(ctx, uid, codeOrAlias)
	if err != nil {
		return Link{}, err
	}
	l := Link{ID: id, Code: s.code(id)}
	var rt int16
	var fs featureScan
	err = s.db.QueryRow(ctx, `SELECT coalesce((SELECT alias FROM aliases WHERE link_id = l.id ORDER BY alias LIMIT 1), ''),
			l.target, l.redirect_type, l.disabled, l.created_at, l.updated_at, coalesce(l.takedown_reason, ''),
			coalesce((SELECT sum(clicks) FROM link_daily d WHERE d.link_id = l.id), 0), `+featureCols+`
		FROM links l WHERE l.id = $1`, id).Scan(append([]any{&l.Alias, &l.Target, &rt, &l.Disabled, &l.CreatedAt, &l.UpdatedAt, &l.TakedownReason, &l.Clicks},
		fs.dests(&l.Features)...)...)
	l.RedirectType = int(rt)
	if err == nil {
		err = fs.finish(l.Disabled, time.Now())
	}
	if err != nil {
		return l, s.classify(err)
	}
	links := []Link{l}
	if err := s.fillTags(ctx, links); err != nil {
		return Link{}, err
	}
	return links[0], nil
}

// Patch changes a link; nil fields stay.
type Patch struct {
	Target       *string
	RedirectType *int
	Disabled     *bool
	FeaturePatch
}

// UpdateLink changes one of the user's links. The change feed trigger
// tells the proxies.
func (s *Store) UpdateLink(ctx context.Context, uid int64, codeOrAlias string, p Patch) (Link, error) {
	id, err := s.Resolve(ctx, uid, codeOrAlias)
	if err != nil {
		return Link{}, err
	}
	var rt *int16
	if p.RedirectType != nil {
		v := int16(*p.RedirectType)
		rt = &v
	}
	// A held link (taken down, or its owner suspended) stays disabled; an
	// owner's enabling or disabling it is what it returns to when the
	// holds are lifted, but a taken-down link is not enabled by its owner.
	tag, err := s.db.Exec(ctx, `UPDATE links SET target = coalesce($2, target), redirect_type = coalesce($3, redirect_type),
		disabled = CASE WHEN disabled_before IS NULL THEN coalesce($4, disabled) ELSE true END,
		disabled_before = CASE WHEN disabled_before IS NULL THEN NULL ELSE coalesce($4, disabled_before) END,
		updated_at = now(), `+featureSet+` WHERE id = $1 AND (takedown_reason IS NULL OR $4 IS NOT FALSE)`,
		append([]any{id, p.Target, rt, p.Disabled}, p.FeaturePatch.args()...)...)
	if err != nil {
		return Link{}, s.classify(err)
	}
	if tag.RowsAffected() == 0 {
		return Link{}, ErrTakenDown
	}
	return s.GetLink(ctx, uid, s.code(id))
}

// Run is one mapreduce run, for the fleet page.
type Run struct {
	ID          int64
	Kind        string
	Started     time.Time
	Finished    *time.Time
	Segments    int
	Records     int64
	Clicks      int64
	Quarantined int
	ProxiesDown int
	// Failed segments were left pending, to retry next run; UnknownVersion
	// of them are of a format version the job does not read yet.
	Failed, UnknownVersion int
	Error                  *string
}

// LastRuns returns the n latest mapreduce runs.
func (s *Store) LastRuns(ctx context.Context, n int) ([]Run, error) {
	rows, err := s.db.Query(ctx, `SELECT id, kind, started_at, finished_at, segments, records, clicks, quarantined, proxies_down,
		failed, unknown_version, error
		FROM mapreduce_runs ORDER BY id DESC LIMIT $1`, n)
	if err != nil {
		return nil, s.classify(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) {
		var x Run
		err := r.Scan(&x.ID, &x.Kind, &x.Started, &x.Finished, &x.Segments, &x.Records, &x.Clicks, &x.Quarantined, &x.ProxiesDown,
			&x.Failed, &x.UnknownVersion, &x.Error)
		return x, err
	})
}
