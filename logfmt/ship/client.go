package ship

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"shortfleet/logfmt"
)

// Client reads one proxy's admin listener: its segments (with the admin
// token), its readiness and its metrics (with the admin or the read token).
// Its zero value is not useful; set BaseURL and Token.
type Client struct {
	// BaseURL is the admin listener's origin, e.g. http://10.0.0.7:9090.
	BaseURL string
	// Token is sent as the bearer token on every request.
	Token string
	// HTTP does the requests; nil is http.DefaultClient.
	HTTP *http.Client
}

// StatusError is an admin listener's answer other than the one asked for.
type StatusError struct {
	Method, URL string
	// Code is the HTTP status code, e.g. 401 for a wrong token.
	Code int
	// Msg is the status line and the start of the body.
	Msg string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s %s: %s", e.Method, e.URL, e.Msg) }

// maxListing bounds a listing's JSON: a proxy lists at most the segments
// of its retention, a few hundred bytes each.
const maxListing = 512 << 20

// List returns the proxy's listing of its pending segments, or with all,
// of every sealed segment it still has. Entries that fail Validate are
// left out of it and returned in skipped, one error each, for the caller
// to log: a proxy's bad entry must not stop the others being ingested. A
// listing that names no proxy is an error.
func (c Client) List(ctx context.Context, all bool) (l Listing, skipped []error, err error) {
	path := "/segments"
	if all {
		path += "?all=1"
	}
	resp, err := c.do(ctx, http.MethodGet, path, nil, http.StatusOK)
	if err != nil {
		return Listing{}, nil, fmt.Errorf("list segments: %w", err)
	}
	defer resp.Body.Close()
	l, skipped, err = decodeListing(resp.Body)
	if err != nil {
		return Listing{}, nil, fmt.Errorf("listing of %s: %w", c.BaseURL, err)
	}
	return l, skipped, nil
}

// decodeListing reads a listing, keeping the entries that validate.
func decodeListing(r io.Reader) (l Listing, skipped []error, err error) {
	if err := json.NewDecoder(io.LimitReader(r, maxListing)).Decode(&l); err != nil {
		return Listing{}, nil, fmt.Errorf("decode: %w", err)
	}
	if l.Proxy == "" {
		return Listing{}, nil, fmt.Errorf("names no proxy")
	}
	valid := l.Segments[:0]
	for _, e := range l.Segments {
		if err := e.Validate(); err != nil {
			skipped = append(skipped, err)
			continue
		}
		valid = append(valid, e)
	}
	l.Segments = valid
	return l, skipped, nil
}

// Fetch returns the bytes of the segment e lists. It reads at most one
// byte more than e.Bytes, so a proxy cannot make it read without end, and
// a caller that checks the length (as the job's Verify does) sees a
// segment longer than its entry; it does not check the bytes itself.
func (c Client) Fetch(ctx context.Context, e logfmt.Entry) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/segments/"+url.PathEscape(e.Name), nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, e.Bytes+1))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", e.Name, err)
	}
	return data, nil
}

// Ack tells the proxy that names are in the ledger, so that it stops
// listing them as pending and may delete them once they age out.
func (c Client) Ack(ctx context.Context, names []string) error {
	body, err := json.Marshal(Ack{Names: names})
	if err != nil {
		return fmt.Errorf("encode acknowledgement: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, "/segments/ingested", body, http.StatusNoContent)
	if err != nil {
		return fmt.Errorf("acknowledge %d segments: %w", len(names), err)
	}
	resp.Body.Close()
	return nil
}

// Ready asks the proxy's /readyz whether it is ready, and if not, why (its
// answer without the "not ready: " prefix). err is set only when there was
// no answer at all.
func (c Client) Ready(ctx context.Context) (ready bool, reason string, err error) {
	resp, err := c.do(ctx, http.MethodGet, "/readyz", nil, 0)
	if err != nil {
		return false, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == http.StatusOK {
		return true, "", nil
	}
	return false, strings.TrimSpace(strings.TrimPrefix(string(body), "not ready: ")), nil
}

// Metrics reads the proxy's /metrics, the Prometheus text format, into a
// map from series (name and labels, as written) to value. If reading stops
// part way, it returns the series read so far with the error.
func (c Client) Metrics(ctx context.Context) (map[string]float64, error) {
	resp, err := c.do(ctx, http.MethodGet, "/metrics", nil, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	m, err := parseMetrics(resp.Body)
	if err != nil {
		return m, fmt.Errorf("scrape metrics of %s: %w", c.BaseURL, err)
	}
	return m, nil
}

// parseMetrics reads Prometheus text lines "series value": comments are
// skipped, and a value that does not parse is 0.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			v, _ := strconv.ParseFloat(l[i+1:], 64)
			m[l[:i]] = v
		}
	}
	return m, sc.Err()
}

// do sends one request with the token. With want set, any other status is
// a *StatusError (and the body is closed); with want 0 every answer is
// returned.
func (c Client) do(ctx context.Context, method, path string, body []byte, want int) (*http.Response, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if want != 0 && resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, &StatusError{Method: method, URL: u, Code: resp.StatusCode,
			Msg: strings.TrimSpace(resp.Status + ": " + strings.TrimSpace(string(msg)))}
	}
	return resp, nil
}
