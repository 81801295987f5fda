package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	sfsql "shortfleet/sql"
)

// MaxTags bounds the tags of one link.
const MaxTags = 20

// ErrTooManyTags is returned when a change would leave a link with more
// than MaxTags tags; nothing is changed.
var ErrTooManyTags = fmt.Errorf("a link has at most %d tags", MaxTags)

// TagCount is one of a user's tags and how many of the user's links carry
// it.
type TagCount struct {
	Tag   string `json:"tag"`
	Links int    `json:"links"`
}

// linkTags reads the tags of the links ids, each link's sorted.
func linkTags(ctx context.Context, q sfsql.Querier, ids []int64) (map[int64][]string, error) {
	out := map[int64][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT link_id, tag FROM link_tags WHERE link_id = ANY($1) ORDER BY link_id, tag`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var tag string
		if err := rows.Scan(&id, &tag); err != nil {
			return nil, err
		}
		out[id] = append(out[id], tag)
	}
	return out, rows.Err()
}

// fillTags sets the Tags of links, an empty list for a link without.
func (s *Store) fillTags(ctx context.Context, links []Link) error {
	ids := make([]int64, len(links))
	for i, l := range links {
		ids[i] = l.ID
	}
	tags, err := linkTags(ctx, s.db, ids)
	if err != nil {
		return s.classify(err)
	}
	for i := range links {
		links[i].Tags = tags[links[i].ID]
		if links[i].Tags == nil {
			links[i].Tags = []string{}
		}
	}
	return nil
}

// insertTags adds tags to link id within tx (those it has already stay
// once), then refuses with ErrTooManyTags if the link carries more than
// MaxTags, which rolls the transaction back.
func insertTags(ctx context.Context, tx pgx.Tx, id int64, tags []string) error {
	if len(tags) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO link_tags (link_id, tag) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
			id, tags); err != nil {
			return err
		}
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM link_tags WHERE link_id = $1`, id).Scan(&n); err != nil {
		return err
	}
	if n > MaxTags {
		return ErrTooManyTags
	}
	return nil
}

// changeTags changes the tags of one of the user's links in a transaction:
// replace, when set, drops every tag first; then add are added and remove
// removed. Tags are checked by the caller (linkreq.ParseTags).
func (s *Store) changeTags(ctx context.Context, uid int64, codeOrAlias string, replace bool, add, remove []string) (Link, error) {
	id, err := s.Resolve(ctx, uid, codeOrAlias)
	if err != nil {
		return Link{}, err
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// Lock the link's row so that two changes at once cannot both
		// pass the count and leave more than MaxTags.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM links WHERE id = $1 FOR UPDATE`, id); err != nil {
			return err
		}
		if replace {
			if _, err := tx.Exec(ctx, `DELETE FROM link_tags WHERE link_id = $1`, id); err != nil {
				return err
			}
		}
		if len(remove) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM link_tags WHERE link_id = $1 AND tag = ANY($2)`, id, remove); err != nil {
				return err
			}
		}
		return insertTags(ctx, tx, id, add)
	})
	if errors.Is(err, ErrTooManyTags) {
		return Link{}, err
	}
	if err != nil {
		return Link{}, s.classify(err)
	}
	return s.GetLink(ctx, uid, s.code(id))
}

// SetTags replaces the tags of one of the user's links.
func (s *Store) SetTags(ctx context.Context, uid int64, codeOrAlias string, tags []string) (Link, error) {
	return s.changeTags(ctx, uid, codeOrAlias, true, tags, nil)
}

// AddTags adds tags to one of the user's links; those it has stay.
func (s *Store) AddTags(ctx context.Context, uid int64, codeOrAlias string, tags []string) (Link, error) {
	return s.changeTags(ctx, uid, codeOrAlias, false, tags, nil)
}

// RemoveTags removes tags from one of the user's links; a tag it does not
// have is no error.
func (s *Store) RemoveTags(ctx context.Context, uid int64, codeOrAlias string, tags []string) (Link, error) {
	return s.changeTags(ctx, uid, codeOrAlias, false, nil, tags)
}

// UserTags lists the tags on a user's links, by name, with how many links
// carry each.
func (s *Store) UserTags(ctx context.Context, uid int64) ([]TagCount, error) {
	rows, err := s.db.Query(ctx, `SELECT t.tag, count(*) FROM link_tags t JOIN links l ON l.id = t.link_id
		WHERE l.user_id = $1 GROUP BY t.tag ORDER BY t.tag`, uid)
	if err != nil {
		return nil, s.classify(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TagCount, error) {
		var c TagCount
		err := r.Scan(&c.Tag, &c.Links)
		return c, err
	})
	return out, s.classify(err)
}

// TagLinks returns the ids of the user's links that carry tag, ascending;
// none is sfsql.ErrNotFound.
func (s *Store) TagLinks(ctx context.Context, uid int64, tag string) ([]int64, error) {
	rows, err := s.db.Query(ctx, `SELECT l.id FROM link_tags t JOIN links l ON l.id = t.link_id
		WHERE l.user_id = $1 AND t.tag = $2 ORDER BY l.id`, uid, tag)
	if err != nil {
		return nil, s.classify(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, s.classify(err)
	}
	if len(ids) == 0 {
		return nil, sfsql.ErrNotFound
	}
	return slices.Clip(ids), nil
}
