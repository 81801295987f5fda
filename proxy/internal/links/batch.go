package links

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	sfsql "shortfleet/sql"
)

// maxBatch bounds the ids in one replica query.
const maxBatch = 128

// batcher turns concurrent replica lookups into few queries: each of its
// workers (one per replica connection) takes a waiting lookup and every
// other one waiting at that moment, and asks for them all in one round
// trip. An idle proxy sends a batch of one at once, so batching adds no
// latency; a busy one spends one round trip on many lookups.
type batcher struct {
	r    *Resolver
	db   *pgxpool.Pool
	reqs chan *lookupReq
	wg   sync.WaitGroup
	stop context.CancelFunc
}

type lookupReq struct {
	id   int64
	e    Entry
	err  error
	done chan struct{}
}

var lookupReqPool = sync.Pool{New: func() any { return &lookupReq{done: make(chan struct{}, 1)} }}

func newBatcher(r *Resolver, db *pgxpool.Pool, workers int) *batcher {
	ctx, cancel := context.WithCancel(context.Background())
	b := &batcher{r: r, db: db, reqs: make(chan *lookupReq, 4*maxBatch), stop: cancel}
	for range workers {
		b.wg.Go(func() { b.work(ctx) })
	}
	return b
}

func (b *batcher) close() {
	b.stop()
	b.wg.Wait()
}

// lookup asks for one id and waits for its batch.
func (b *batcher) lookup(ctx context.Context, id int64) (Entry, error) {
	req := lookupReqPool.Get().(*lookupReq)
	req.id, req.e, req.err = id, Entry{}, nil
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		lookupReqPool.Put(req)
		return Entry{}, ctx.Err()
	}
	// The worker always answers (it bounds its own query), so the request
	// can go back to the pool.
	<-req.done
	e, err := req.e, req.err
	lookupReqPool.Put(req)
	return e, err
}

func (b *batcher) work(ctx context.Context) {
	batch := make([]*lookupReq, 0, maxBatch)
	ids := make([]int64, 0, maxBatch)
	var found []sfsql.Link
	for {
		var first *lookupReq
		select {
		case first = <-b.reqs:
		case <-ctx.Done():
			return
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		ids = ids[:0]
		for _, r := range batch {
			ids = append(ids, r.id)
		}
		var err error
		found, err = b.query(ids, found[:0])
		b.r.batches.Add(1)
		for _, r := range batch {
			r.err = err
			if err == nil {
				r.err = sfsql.ErrNotFound
				for _, l := range found {
					if l.ID == r.id {
						r.e, r.err = entryOf(l), nil
						break
					}
				}
			}
			r.done <- struct{}{}
		}
	}
}

// query runs one batch, retrying recovery conflicts.
func (b *batcher) query(ids []int64, out []sfsql.Link) ([]sfsql.Link, error) {
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			b.r.conflictRetries.Add(1)
			time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.r.cfg.LookupTimeout)
		out, err = sfsql.LinksByIDs(ctx, b.db, ids, out[:0])
		cancel()
		if err == nil || !isConflict(err) {
			return out, err
		}
	}
	return out, err
}
