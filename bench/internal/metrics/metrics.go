// Package metrics reads a shortfleet process's Prometheus metrics and
// signs a bench account up, for the drivers.
package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Scrape reads an admin listener's /metrics into a map from series (name
// and labels, as written) to value.
func Scrape(adminURL, token string) (map[string]float64, error) {
	req, _ := http.NewRequest("GET", adminURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
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
