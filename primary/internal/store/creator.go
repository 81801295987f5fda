package store

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
)

// maxGroup bounds the links one group commit writes.
const maxGroup = 512

// creator writes links in group commits: one goroutine takes every
// creation waiting and writes them in one transaction under the creation
// lock. The lock serialises creation anyway (ids must commit in order), so
// one commit's fsync is shared by every link in it instead of paid by
// each; an idle primary writes a group of one at once.
type creator struct {
	s    *Store
	reqs chan *createReq
	wg   sync.WaitGroup
}

type createReq struct {
	ctx  context.Context
	uid  int64
	n    NewLink
	link Link
	err  error
	done chan struct{}
}

func newCreator(s *Store) *creator {
	c := &creator{s: s, reqs: make(chan *createReq, 4*maxGroup)}
	c.wg.Go(c.loop)
	return c
}

func (c *creator) close() {
	close(c.reqs)
	c.wg.Wait()
}

func (c *creator) create(ctx context.Context, uid int64, n NewLink) (Link, error) {
	r := &createReq{ctx: ctx, uid: uid, n: n, done: make(chan struct{})}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return Link{}, ctx.Err()
	}
	<-r.done
	return r.link, r.err
}

func (c *creator) loop() {
	group := make([]*createReq, 0, maxGroup)
	for first := range c.reqs {
		group = append(group[:0], first)
	drain:
		for len(group) < maxGroup {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break drain
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		// A request whose caller gave up is not written.
		live := group[:0]
		for _, r := range group {
			if r.ctx.Err() != nil {
				r.err = r.ctx.Err()
				close(r.done)
				continue
			}
			live = append(live, r)
		}
		c.write(live)
	}
}

func (c *creator) write(group []*createReq) {
	if len(group) == 0 {
		return
	}
	ctx := context.Background()
	byUser := map[int64][]int{}
	for i, r := range group {
		byUser[r.uid] = append(byUser[r.uid], i)
	}
	err := pgx.BeginFunc(ctx, c.s.db, func(tx pgx.Tx) error {
		for uid, idx := range byUser {
			ns := make([]NewLink, len(idx))
			for j, i := range idx {
				ns[j] = group[i].n
			}
			links, err := insertLinks(ctx, tx, uid, ns, c.s.code)
			if err != nil {
				return err
			}
			for j, i := range idx {
				group[i].link = links[j]
			}
		}
		return nil
	})
	err = c.s.classify(err)
	for _, r := range group {
		r.err = err
		close(r.done)
	}
}
