package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	sfsql "shortfleet/sql"
)

// Point is one bucket of a link's clicks over time.
type Point struct {
	Time   time.Time `json:"time"`
	Clicks int64     `json:"clicks"`
	Bots   int64     `json:"bots"`
}

// Stats is what a link's dashboard and stats API show for a range.
type Stats struct {
	From        time.Time                     `json:"from"`
	To          time.Time                     `json:"to"`
	Granularity string                        `json:"granularity"`
	Clicks      int64                         `json:"clicks"`
	Bots        int64                         `json:"bots"`
	Uniques     uint64                        `json:"uniques"`
	Series      []Point                       `json:"series"`
	Top         map[string][]sfsql.ValueCount `json:"top"`
}

// BotShare is the share of clicks that were bots'.
func (s Stats) BotShare() float64 {
	if s.Clicks == 0 {
		return 0
	}
	return float64(s.Bots) / float64(s.Clicks)
}

// TopN is how many values per dimension Stats returns.
const TopN = 10

// LinkStats reads a link's stats over [from, to): the series by hour or
// day, totals, unique visitors (the day sketches merged) and the top values
// of each dimension. Dimensions and uniques are kept per day, so an hourly
// range reads the days it touches.
func (s *Store) LinkStats(ctx context.Context, id int64, from, to time.Time, granularity string) (Stats, error) {
	return s.LinksStats(ctx, []int64{id}, from, to, granularity)
}

// LinksStats is LinkStats of several links together, as one: the clicks
// of each bucket and each dimension value added up, and the visitors
// counted once across them all (their sketches merged).
func (s *Store) LinksStats(ctx context.Context, ids []int64, from, to time.Time, granularity string) (Stats, error) {
	from, to = from.UTC(), to.UTC()
	st := Stats{From: from, To: to, Granularity: granularity, Top: map[string][]sfsql.ValueCount{}}
	step := time.Hour
	if granularity == "day" {
		step = 24 * time.Hour
	}
	from = from.Truncate(step)
	buckets := map[time.Time]*Point{}
	for t := from; t.Before(to); t = t.Add(step) {
		st.Series = append(st.Series, Point{Time: t})
	}
	for i := range st.Series {
		buckets[st.Series[i].Time] = &st.Series[i]
	}
	if granularity == "hour" {
		rows, err := s.db.Query(ctx, `SELECT hour, clicks, bot_clicks FROM clicks_hourly
			WHERE link_id = ANY($1) AND hour >= $2 AND hour < $3`, ids, from, to)
		if err != nil {
			return st, s.classify(err)
		}
		for rows.Next() {
			var t time.Time
			var c, b int64
			if err := rows.Scan(&t, &c, &b); err != nil {
				return st, s.classify(err)
			}
			if p := buckets[t.UTC()]; p != nil {
				p.Clicks, p.Bots = p.Clicks+c, p.Bots+b
			}
			st.Clicks, st.Bots = st.Clicks+c, st.Bots+b
		}
		if err := rows.Err(); err != nil {
			return st, s.classify(err)
		}
	}
	// The days the range touches: [first day, day after the last instant).
	fromDay := from.Truncate(24 * time.Hour)
	toDay := to.Truncate(24 * time.Hour)
	if toDay.Before(to) {
		toDay = toDay.Add(24 * time.Hour)
	}
	rows, err := s.db.Query(ctx, `SELECT day, clicks, bot_clicks, uniques, dims FROM link_daily
		WHERE link_id = ANY($1) AND day >= $2::date AND day < $3::date`, ids, fromDay, toDay)
	if err != nil {
		return st, s.classify(err)
	}
	dims := sfsql.Dims{}
	var sketches [][]byte
	for rows.Next() {
		var day time.Time
		var c, b int64
		var sk, dj []byte
		if err := rows.Scan(&day, &c, &b, &sk, &dj); err != nil {
			return st, s.classify(err)
		}
		if granularity == "day" {
			if p := buckets[day.UTC()]; p != nil {
				p.Clicks, p.Bots = p.Clicks+c, p.Bots+b
			}
			st.Clicks, st.Bots = st.Clicks+c, st.Bots+b
		}
		var d sfsql.Dims
		if err := json.Unmarshal(dj, &d); err != nil {
			return st, fmt.Errorf("decode dimensions: %w", err)
		}
		dims.Merge(d)
		sketches = append(sketches, sk)
	}
	if err := rows.Err(); err != nil {
		return st, s.classify(err)
	}
	if st.Uniques, err = sfsql.UniquesOf(sketches); err != nil {
		return st, err
	}
	for _, name := range sfsql.DimNames {
		st.Top[name] = dims.Top(name, TopN)
		if st.Top[name] == nil {
			st.Top[name] = []sfsql.ValueCount{}
		}
	}
	return st, nil
}
