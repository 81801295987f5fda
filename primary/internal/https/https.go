// Package https keeps the primary's browsers on HTTPS. The app is reached
// over TLS it terminates itself (-tls-cert, -tls-key) or, more often,
// through a load balancer that terminates TLS and forwards plain HTTP with
// X-Forwarded-Proto. A session cookie is marked Secure, so a page served
// over plain HTTP could not log anyone in; and a first visit typed without
// a scheme must not stay on plain HTTP, where the session could be read or
// changed on the way. So plain HTTP is redirected to the same URL over
// HTTPS, and HTTPS answers carry Strict-Transport-Security, after which the
// browser no longer tries plain HTTP at all.
package https

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"shortfleet/primary/internal/limit"
)

// HSTS is the Strict-Transport-Security value of every HTTPS answer: two
// years. It has neither includeSubDomains nor preload: the app's host is
// not the short host, whose proxies answer plain HTTP, and both are
// commitments for the whole domain that its operator should make.
const HSTS = "max-age=63072000"

// Scheme is the scheme the client used for r, "https" or "http": https
// when r came over TLS to this server; otherwise what X-Forwarded-Proto
// says, when the socket's peer is a trusted balancer (limit.PeerTrusted)
// and the header is exactly one line of "https" or "http" (any case);
// http for anything else. Anyone may send the header, so a stranger's is
// never believed: a spoofed "https" would only spare its sender the
// redirect, but the rule is the one every balancer header follows.
func Scheme(r *http.Request, trusted []netip.Prefix) string {
	if r.TLS != nil {
		return "https"
	}
	if !limit.PeerTrusted(r, trusted) {
		return "http"
	}
	if v := r.Header.Values("X-Forwarded-Proto"); len(v) == 1 && strings.EqualFold(v[0], "https") {
		return "https"
	}
	return "http"
}

// ParseOrigin reads -app-base: the app's public origin, https://host or
// https://host:port, where Require sends plain requests. Empty is allowed
// (then the request's Host is used).
func ParseOrigin(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an https origin (https://host or https://host:port)", s)
	}
	return "https://" + u.Host, nil
}

// Require serves over HTTPS only (see Scheme): an HTTPS request reaches
// next with Strict-Transport-Security set; a plain one is redirected to
// origin/RequestURI, or, without an origin, https://Host/RequestURI (the
// origin matters where HTTPS is on another port than plain HTTP, as in
// the local fleet), 301 for GET and HEAD and 308 for the rest (a
// 301 may turn a POST into a GET; 308 keeps the method and body). GET and
// HEAD /healthz are served as they come: the balancer checks the app in
// plain HTTP, and a redirect would read as down. A plain request with no
// usable Host has nowhere to be sent and is refused 400.
func Require(next http.Handler, trusted []netip.Prefix, origin string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Scheme(r, trusted) == "https" {
			w.Header().Set("Strict-Transport-Security", HSTS)
			next.ServeHTTP(w, r)
			return
		}
		get := r.Method == http.MethodGet || r.Method == http.MethodHead
		if get && r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		// r.URL.RequestURI, not r.RequestURI: a request target in
		// absolute form (GET http://host/path) keeps only its path.
		target := "https://" + r.Host + r.URL.RequestURI()
		if origin != "" {
			target = origin + r.URL.RequestURI()
		}
		// The Host header names where the client meant to go. net/http
		// has refused one with a path, user info or a space; one that
		// is empty or does not parse as a URL's host (a bad escape, an
		// unclosed bracket) leaves nowhere to send the client.
		if _, err := url.Parse(target); r.Host == "" || err != nil {
			http.Error(w, "this site is served over HTTPS only", http.StatusBadRequest)
			return
		}
		code := http.StatusPermanentRedirect
		if get {
			code = http.StatusMovedPermanently
		}
		http.Redirect(w, r, target, code)
	})
}

// TLSConfig is the server configuration for the app's own certificate and
// key, PEM files: nil when both names are empty (plain HTTP, as behind a
// balancer that terminates TLS). One without the other is an error, as is
// a pair that does not load or does not match, so that a typo stops the
// app at start rather than leaving it on plain HTTP.
func TLSConfig(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("a TLS certificate needs its key and a key its certificate: give both files or neither")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, nil
}
