// Package metrics reads a shortfleet process's Prometheus metrics and
// profiles, and signs a bench account up, for the drivers.
package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	"shortfleet/logfmt/ship"
)

// Series of a proxy's /metrics (proxy/internal/metrics) the drivers read:
// lookups its replica answered, and the batched replica queries they took.
const (
	ReplicaLookups = `shortfleet_proxy_lookups_total{outcome="replica"}`
	ReplicaBatches = "shortfleet_proxy_replica_batches_total"
)

// Scrape reads an admin listener's /metrics into a map from series (name
// and labels, as written) to value, with the client every reader of a
// proxy's admin listener uses. A refusal (a wrong token) is an error, not
// an empty scrape.
func Scrape(adminURL, token string) (map[string]float64, error) {
	return ship.Client{BaseURL: adminURL, Token: token}.Metrics(context.Background())
}

// Signup creates an account on the primary app at base and returns its
// API key.
func Signup(base, email string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": "a long enough password"})
	resp, err := http.Post(base+"/api/signup", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var acct struct {
		APIKey string `json:"api_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&acct); err != nil || acct.APIKey == "" {
		return "", fmt.Errorf("sign up at %s: status %d, %v", base, resp.StatusCode, err)
	}
	return acct.APIKey, nil
}

// SaveProfile saves what an admin listener's pprof endpoint answers at
// path (say /debug/pprof/profile?seconds=5, which takes that long) into
// the file out.
func SaveProfile(adminURL, token, path, out string) error {
	req, err := http.NewRequest("GET", adminURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: status %d", path, resp.StatusCode)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
