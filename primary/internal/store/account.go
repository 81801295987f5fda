package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/primary/internal/auth"
	sfsql "shortfleet/sql"
)

// CheckPassword reports ErrBadLogin unless password is user uid's.
func (s *Store) CheckPassword(ctx context.Context, uid int64, password string) error {
	var hash string
	err := s.db.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, uid).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrBadLogin
	}
	if err != nil {
		return s.classify(err)
	}
	if ok, err := auth.CheckPassword(password, hash); err != nil || !ok {
		return ErrBadLogin
	}
	return nil
}

// SetPassword stores a new password hash for user uid and, in the same
// transaction, ends every session of the user but the one whose token is
// keepToken (none when empty): whoever else was logged in, perhaps with
// the old password, is logged out. API keys stay. It returns how many
// sessions ended.
func (s *Store) SetPassword(ctx context.Context, uid int64, hash, keepToken string) (int64, error) {
	var ended int64
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, uid, hash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return sfsql.ErrNotFound
		}
		var keep []byte
		if keepToken != "" {
			keep = hashToken(keepToken)
		}
		tag, err = tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR token_hash <> $2)`, uid, keep)
		ended = tag.RowsAffected()
		return err
	})
	return ended, s.classify(err)
}

// DeleteAccount deletes user uid: sessions and API keys (by cascade), the
// stats of the user's links and their tags. The links themselves stay as
// tombstones: disabled, owned by nobody, their targets blanked. Their
// codes and aliases are never handed out again, and the update writes the
// change feed, so every proxy evicts them and answers 410 at once. The
// email is free for a new sign-up. It returns how many links became
// tombstones.
func (s *Store) DeleteAccount(ctx context.Context, uid int64) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// No link of the user's may be created between the tombstoning
		// and the user's deletion (it would be left live, or fail the
		// deletion on its foreign key): hold the creation lock.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sfsql.LinkCreateLock); err != nil {
			return err
		}
		// A MapReduce run writing stats now may be writing the user's:
		// wait for it to commit, so that the stats deleted below stay
		// deleted (runs drop tombstoned links' clicks, sfsql.StatsWriteLock).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sfsql.StatsWriteLock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE links SET disabled = true, user_id = NULL, target = '', rules = NULL, password_hash = NULL, updated_at = now()
			WHERE user_id = $1 RETURNING id`, uid)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		n = len(ids)
		for _, q := range []string{`DELETE FROM clicks_hourly WHERE link_id = ANY($1)`, `DELETE FROM link_daily WHERE link_id = ANY($1)`,
			`DELETE FROM link_tags WHERE link_id = ANY($1)`} {
			if _, err := tx.Exec(ctx, q, ids); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, uid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return sfsql.ErrNotFound
		}
		// The other app instances empty their key caches too.
		return bumpCredentials(ctx, tx)
	})
	if err != nil {
		return 0, s.classify(err)
	}
	// Committed: the keys are gone; none may answer from the cache.
	s.forgetKeys()
	return n, nil
}

// Export is everything an account holds, as its owner downloads it:
// never a key or a password hash.
type Export struct {
	ExportedAt time.Time    `json:"exported_at"`
	User       ExportUser   `json:"user"`
	Links      []ExportLink `json:"links"`
	Keys       []Key        `json:"api_keys"`
}

// ExportUser is the account itself.
type ExportUser struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	IsAdmin   bool      `json:"is_admin"`
	CreatedAt time.Time `json:"created_at"`
}

// ExportLink is a link with every alias, its tags and its stats.
type ExportLink struct {
	Code         string      `json:"code"`
	Aliases      []string    `json:"aliases"`
	Target       string      `json:"target"`
	RedirectType int         `json:"redirect_type"`
	Disabled     bool        `json:"disabled"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
	Tags         []string    `json:"tags"`
	Clicks       int64       `json:"clicks"`
	BotClicks    int64       `json:"bot_clicks"`
	Daily        []ExportDay `json:"daily"`
	id           int64
}

// ExportDay is one day of a link's stats: clicks, unique visitors and
// the dimension counts, as the dashboard reads them.
type ExportDay struct {
	Day       string          `json:"day"`
	Clicks    int64           `json:"clicks"`
	BotClicks int64           `json:"bot_clicks"`
	Uniques   uint64          `json:"uniques"`
	Dims      json.RawMessage `json:"dimensions"`
}

// ExportAccount reads everything user uid holds, in one repeatable-read
// transaction so that its parts agree.
func (s *Store) ExportAccount(ctx context.Context, uid int64) (Export, error) {
	x := Export{Links: []ExportLink{}, Keys: []Key{}}
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT id, email, is_admin, created_at, now() FROM users WHERE id = $1`, uid).Scan(
			&x.User.ID, &x.User.Email, &x.User.IsAdmin, &x.User.CreatedAt, &x.ExportedAt); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return sfsql.ErrNotFound
			}
			return err
		}
		rows, err := tx.Query(ctx, `SELECT l.id, l.target, l.redirect_type, l.disabled, l.created_at, l.updated_at,
				coalesce(array(SELECT alias FROM aliases a WHERE a.link_id = l.id ORDER BY alias), '{}'),
				coalesce(array(SELECT tag FROM link_tags t WHERE t.link_id = l.id ORDER BY tag), '{}')
			FROM links l WHERE l.user_id = $1 ORDER BY l.id`, uid)
		if err != nil {
			return err
		}
		byID := map[int64]int{}
		for rows.Next() {
			var l ExportLink
			var rt int16
			if err := rows.Scan(&l.id, &l.Target, &rt, &l.Disabled, &l.CreatedAt, &l.UpdatedAt, &l.Aliases, &l.Tags); err != nil {
				return err
			}
			l.RedirectType, l.Code, l.Daily = int(rt), s.code(l.id), []ExportDay{}
			byID[l.id] = len(x.Links)
			x.Links = append(x.Links, l)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT d.link_id, d.day, d.clicks, d.bot_clicks, d.uniques, d.dims FROM link_daily d
			JOIN links l ON l.id = d.link_id WHERE l.user_id = $1 ORDER BY d.link_id, d.day`, uid)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var day time.Time
			var d ExportDay
			var sketch, dims []byte
			if err := rows.Scan(&id, &day, &d.Clicks, &d.BotClicks, &sketch, &dims); err != nil {
				return err
			}
			if d.Uniques, err = sfsql.UniquesOf([][]byte{sketch}); err != nil {
				return err
			}
			d.Day, d.Dims = day.Format(time.DateOnly), json.RawMessage(dims)
			l := &x.Links[byID[id]]
			l.Daily = append(l.Daily, d)
			l.Clicks, l.BotClicks = l.Clicks+d.Clicks, l.BotClicks+d.BotClicks
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT id, name, prefix, created_at, last_used_at, revoked_at, scope FROM api_keys
			WHERE user_id = $1 ORDER BY id`, uid)
		if err != nil {
			return err
		}
		x.Keys, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) {
			var k Key
			err := r.Scan(&k.ID, &k.Name, &k.Prefix, &k.CreatedAt, &k.LastUsed, &k.Revoked, &k.Scope)
			return k, err
		})
		return err
	})
	if err != nil {
		return Export{}, s.classify(err)
	}
	if x.Keys == nil {
		x.Keys = []Key{}
	}
	return x, nil
}
