package web

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

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

func (s *Server) proxyStatus(ctx context.Context, base string) proxyStatus {
	ps := proxyStatus{URL: base, LagSeconds: -1}
	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(base, "/")+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+s.cfg.ReadToken)
		return s.client.Do(req)
	}
	resp, err := get("/readyz")
	if err != nil {
		ps.Reason = "unreachable"
		return ps
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	ps.Ready = resp.StatusCode == http.StatusOK
	ps.Reason = strings.TrimSpace(strings.TrimPrefix(string(body), "not ready: "))
	resp, err = get("/metrics")
	if err != nil {
		return ps
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		val := func() float64 {
			f, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			return f
		}
		switch {
		case strings.HasPrefix(l, "shortfleet_proxy_replica_lag_seconds "):
			ps.LagSeconds = val()
		case strings.HasPrefix(l, "shortfleet_proxy_segments_pending "):
			ps.Pending = int64(val())
		case strings.HasPrefix(l, "shortfleet_proxy_requests_total{"):
			ps.Requests += int64(val())
		}
	}
	return ps
}
