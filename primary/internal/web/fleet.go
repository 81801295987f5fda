package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"shortfleet/logfmt/ship"
	"shortfleet/primary/internal/store"
)

// proxyStatus is what the fleet page shows of a proxy, read from its
// admin listener.
type proxyStatus struct {
	URL        string
	Ready      bool
	Reason     string
	LagSeconds float64
	Pending    int64
	Requests   int64
}

type runView struct {
	store.Run
	Took string
}

type fleetData struct {
	Proxies []proxyStatus
	Runs    []runView
}

func (s *Server) fleet(w http.ResponseWriter, r *http.Request) {
	if !userOf(r).IsAdmin {
		s.fail(w, r, http.StatusNotFound, "Not found", "There is no such page.")
		return
	}
	d := fleetData{Proxies: make([]proxyStatus, len(s.cfg.Proxies))}
	var wg sync.WaitGroup
	for i, u := range s.cfg.Proxies {
		wg.Go(func() { d.Proxies[i] = s.proxyStatus(r.Context(), u) })
	}
	runs, err := s.st.LastRuns(r.Context(), 20)
	wg.Wait()
	if err != nil {
		s.storeFail(w, r, "read the runs", err)
		return
	}
	for _, run := range runs {
		v := runView{Run: run}
		if run.Finished != nil {
			v.Took = run.Finished.Sub(run.Started).Round(time.Millisecond).String()
		}
		d.Runs = append(d.Runs, v)
	}
	s.render(w, r, http.StatusOK, "fleet", page{Title: "Fleet", Data: d})
}

// proxyStatus reads a proxy's readiness and metrics from its admin
// listener at base, with the read token.
func (s *Server) proxyStatus(ctx context.Context, base string) proxyStatus {
	ps := proxyStatus{URL: base, LagSeconds: -1}
	c := ship.Client{BaseURL: base, Token: s.cfg.ReadToken, HTTP: s.client}
	ready, reason, err := c.Ready(ctx)
	if err != nil {
		ps.Reason = "unreachable"
		return ps
	}
	ps.Ready, ps.Reason = ready, reason
	// A scrape that fails part way still shows what it read; one that
	// fails outright leaves the lag unknown and the counts at zero.
	m, _ := c.Metrics(ctx)
	for series, v := range m {
		switch {
		case series == "shortfleet_proxy_replica_lag_seconds":
			ps.LagSeconds = v
		case series == "shortfleet_proxy_segments_pending":
			ps.Pending = int64(v)
		case strings.HasPrefix(series, "shortfleet_proxy_requests_total{"):
			ps.Requests += int64(v)
		}
	}
	return ps
}
