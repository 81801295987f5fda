package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	sfsql "shortfleet/sql"
)

// Errors of the admin actions and of what they hold.
var (
	// ErrSuspended is a log-in to a suspended account.
	ErrSuspended = errors.New("this account is suspended")
	// ErrTakenDown is an owner enabling a link an admin took down.
	ErrTakenDown = errors.New("this link was taken down by an admin and cannot be enabled")
	// ErrNotTakenDown is restoring a link that is not taken down.
	ErrNotTakenDown = errors.New("this link is not taken down")
)

// MaxReasonLen bounds a takedown reason, in characters (the schema's
// constraint too).
const MaxReasonLen = 500

// AdminUser is an account as the admin pages list it.
type AdminUser struct {
	ID          int64      `json:"id"`
	Email       string     `json:"email"`
	IsAdmin     bool       `json:"is_admin"`
	CreatedAt   time.Time  `json:"created_at"`
	SuspendedAt *time.Time `json:"suspended_at,omitempty"`
	Links       int64      `json:"links"`
}

// ListUsers returns a page of the accounts whose e-mail holds query
// (any case; empty: all), oldest first, and how many match in all.
func (s *Store) ListUsers(ctx context.Context, query string, page, perPage int) ([]AdminUser, int, error) {
	o := ListOptions{Page: page, PerPage: perPage}.normalized()
	pattern := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(query) + "%"
	rows, err := s.db.Query(ctx, `SELECT u.id, u.email, u.is_admin, u.created_at, u.suspended_at,
			(SELECT count(*) FROM links l WHERE l.user_id = u.id), count(*) OVER ()
		FROM users u WHERE u.email ILIKE $1 ORDER BY u.id LIMIT $2 OFFSET $3`, pattern, o.PerPage, (o.Page-1)*o.PerPage)
	if err != nil {
		return nil, 0, s.classify(err)
	}
	total := 0
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AdminUser, error) {
		var u AdminUser
		err := r.Scan(&u.ID, &u.Email, &u.IsAdmin, &u.CreatedAt, &u.SuspendedAt, &u.Links, &total)
		return u, err
	})
	return users, total, s.classify(err)
}

// AdminUserByID returns one account.
func (s *Store) AdminUserByID(ctx context.Context, id int64) (AdminUser, error) {
	var u AdminUser
	err := s.db.QueryRow(ctx, `SELECT u.id, u.email, u.is_admin, u.created_at, u.suspended_at,
			(SELECT count(*) FROM links l WHERE l.user_id = u.id)
		FROM users u WHERE u.id = $1`, id).Scan(&u.ID, &u.Email, &u.IsAdmin, &u.CreatedAt, &u.SuspendedAt, &u.Links)
	if errors.Is(err, pgx.ErrNoRows) {
		return AdminUser{}, sfsql.ErrNotFound
	}
	return u, s.classify(err)
}

// SuspendUser suspends an account: its log-ins, sessions and API keys are
// refused, and every link of it is disabled, so the change feed takes
// them off every proxy at once. What each link was is kept
// (disabled_before) for UnsuspendUser. It returns how many links it
// disabled; suspending a suspended account changes nothing.
func (s *Store) SuspendUser(ctx context.Context, id int64) (int64, error) {
	return s.setSuspended(ctx, id, true)
}

// UnsuspendUser lifts a suspension: each link goes back to what it was
// before, but for links still taken down. It returns how many links it
// released.
func (s *Store) UnsuspendUser(ctx context.Context, id int64) (int64, error) {
	return s.setSuspended(ctx, id, false)
}

// setSuspended changes the account, then its links, in two transactions.
// The first holds the link creation lock (see the links_owner_held
// trigger, migration 0009) only while it changes the account, so link
// creation waits a moment however many links the account has; the
// second holds or releases every link of it, those a creation committed
// just before the first included. Run again after a failure between the
// two, it finishes the work: each step changes only what is left.
func (s *Store) setSuspended(ctx context.Context, id int64, suspend bool) (int64, error) {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sfsql.LinkCreateLock); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE users SET suspended_at = CASE WHEN $2 THEN coalesce(suspended_at, now()) END
			WHERE id = $1`, id, suspend)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return sfsql.ErrNotFound
		}
		return bumpCredentials(ctx, tx)
	})
	if err != nil {
		return 0, s.classify(err)
	}
	s.forgetKeys()
	var tag pgconn.CommandTag
	if suspend {
		tag, err = s.db.Exec(ctx, `UPDATE links SET owner_suspended = true,
				disabled_before = coalesce(disabled_before, disabled), disabled = true
			WHERE user_id = $1 AND NOT owner_suspended`, id)
	} else {
		// Every right-hand side reads the row as it was.
		tag, err = s.db.Exec(ctx, `UPDATE links SET owner_suspended = false,
				disabled = CASE WHEN takedown_reason IS NULL THEN disabled_before ELSE true END,
				disabled_before = CASE WHEN takedown_reason IS NULL THEN NULL ELSE disabled_before END
			WHERE user_id = $1 AND owner_suspended`, id)
	}
	if err != nil {
		return 0, s.classify(err)
	}
	return tag.RowsAffected(), nil
}

// bumpCredentials tells every app instance to empty its API key cache
// (see watchCredentials).
func bumpCredentials(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `UPDATE credential_epoch SET epoch = epoch + 1`)
	return err
}

// credentialPoll is how often an instance reads the credential epoch: how
// long another instance's suspension may take to stop a key cached here.
const credentialPoll = time.Second

// watchCredentials empties the API key cache whenever an instance
// suspended or unsuspended an account (credential_epoch moved), until
// stop is closed. A read that fails is retried at the next tick: while
// the database is unreachable no key can be checked anew anyway.
func (s *Store) watchCredentials(stop <-chan struct{}) {
	t := time.NewTicker(credentialPoll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), credentialPoll)
		if err := s.pollCredentials(ctx); err != nil {
			s.logger.Debug("read the credential epoch", "err", err)
		}
		cancel()
	}
}

// pollCredentials reads the credential epoch and empties the API key
// cache if it moved since the last read; the first read empties it too,
// as a suspension may have come between the cache's first fill and it.
func (s *Store) pollCredentials(ctx context.Context) error {
	var epoch int64
	if err := s.db.QueryRow(ctx, `SELECT epoch FROM credential_epoch`).Scan(&epoch); err != nil {
		return fmt.Errorf("read the credential epoch: %w", err)
	}
	if s.credSeen.Swap(epoch) != epoch {
		s.forgetKeys()
	}
	return nil
}

// AdminLink is a link as the admin pages show it: any account's.
type AdminLink struct {
	Link
	Owner       string     `json:"owner"`
	TakenDownAt *time.Time `json:"taken_down_at,omitempty"`
}

// FindLink returns any account's link by code or alias.
func (s *Store) FindLink(ctx context.Context, codeOrAlias string) (AdminLink, error) {
	var id int64
	var err error
	if cid, derr := s.codec.DecodeString(codeOrAlias); derr == nil {
		id = cid
	} else if id, err = sfsql.AliasLink(ctx, s.db, codeOrAlias); err != nil {
		return AdminLink{}, s.classify(err)
	}
	return s.adminLink(ctx, id)
}

func (s *Store) adminLink(ctx context.Context, id int64) (AdminLink, error) {
	l := AdminLink{Link: Link{ID: id, Code: s.code(id)}}
	var rt int16
	err := s.db.QueryRow(ctx, `SELECT coalesce((SELECT alias FROM aliases WHERE link_id = l.id ORDER BY alias LIMIT 1), ''),
			l.target, l.redirect_type, l.disabled, l.created_at, l.updated_at, coalesce(l.takedown_reason, ''), l.taken_down_at, u.email
		FROM links l JOIN users u ON u.id = l.user_id WHERE l.id = $1`, id).Scan(&l.Alias, &l.Target, &rt, &l.Disabled,
		&l.CreatedAt, &l.UpdatedAt, &l.TakedownReason, &l.TakenDownAt, &l.Owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return AdminLink{}, sfsql.ErrNotFound
	}
	l.RedirectType = int(rt)
	return l, s.classify(err)
}

// TakeDown disables any account's link for reason, which its owner sees;
// taking down a link taken down already replaces the reason.
func (s *Store) TakeDown(ctx context.Context, id int64, reason string) (AdminLink, error) {
	tag, err := s.db.Exec(ctx, `UPDATE links SET takedown_reason = $2, taken_down_at = now(),
			disabled_before = coalesce(disabled_before, disabled), disabled = true
		WHERE id = $1`, id, reason)
	if err != nil {
		return AdminLink{}, s.classify(err)
	}
	if tag.RowsAffected() == 0 {
		return AdminLink{}, sfsql.ErrNotFound
	}
	return s.adminLink(ctx, id)
}

// Restore lifts a takedown: the link goes back to what it was before,
// unless its owner is suspended.
func (s *Store) Restore(ctx context.Context, id int64) (AdminLink, error) {
	tag, err := s.db.Exec(ctx, `UPDATE links SET takedown_reason = NULL, taken_down_at = NULL,
			disabled = CASE WHEN owner_suspended THEN true ELSE disabled_before END,
			disabled_before = CASE WHEN owner_suspended THEN disabled_before ELSE NULL END
		WHERE id = $1 AND takedown_reason IS NOT NULL`, id)
	if err != nil {
		return AdminLink{}, s.classify(err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.adminLink(ctx, id); err != nil {
			return AdminLink{}, err
		}
		return AdminLink{}, ErrNotTakenDown
	}
	return s.adminLink(ctx, id)
}

// TakenDown lists the links taken down, newest first, at most n.
func (s *Store) TakenDown(ctx context.Context, n int) ([]AdminLink, error) {
	rows, err := s.db.Query(ctx, `SELECT id FROM links WHERE takedown_reason IS NOT NULL ORDER BY taken_down_at DESC, id DESC LIMIT $1`, n)
	if err != nil {
		return nil, s.classify(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, s.classify(err)
	}
	out := make([]AdminLink, 0, len(ids))
	for _, id := range ids {
		l, err := s.adminLink(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// reapplyBatch is how many links ReapplyPolicy reads at a time.
const reapplyBatch = 1000

// ReapplyPolicy checks the target of every link not taken down against
// refuse, which returns why a target is no longer allowed (empty: it is),
// and takes down each refused link with that reason. It returns the links
// it took down, in id order. Links are read in batches by id, so a large
// table is never held in memory or in one transaction.
func (s *Store) ReapplyPolicy(ctx context.Context, refuse func(target string) string) ([]AdminLink, error) {
	var out []AdminLink
	var after int64
	for {
		rows, err := s.db.Query(ctx, `SELECT id, target FROM links WHERE id > $1 AND takedown_reason IS NULL ORDER BY id LIMIT $2`,
			after, reapplyBatch)
		if err != nil {
			return out, s.classify(err)
		}
		type row struct {
			ID     int64
			Target string
		}
		batch, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		if err != nil {
			return out, s.classify(err)
		}
		for _, r := range batch {
			reason := refuse(r.Target)
			if reason == "" {
				continue
			}
			if len([]rune(reason)) > MaxReasonLen {
				reason = string([]rune(reason)[:MaxReasonLen])
			}
			l, err := s.TakeDown(ctx, r.ID, reason)
			if err != nil {
				return out, fmt.Errorf("take down link %d: %w", r.ID, err)
			}
			out = append(out, l)
		}
		if len(batch) < reapplyBatch {
			return out, nil
		}
		after = batch[len(batch)-1].ID
	}
}
