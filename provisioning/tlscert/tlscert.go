// Package tlscert makes and checks the certificate the load balancer
// terminates TLS with (README.md, "HTTPS at the balancer").
//
// The local fleet makes its own certificate authority on first start and
// keeps it in the state folder, so a developer trusts it once; the
// balancer's certificate is issued by it for the fleet's addresses and
// issued again when those change or it nears its end. A real deployment
// brings its own files (an ACME client's fullchain and key): Check is what
// both the local fleet and the Ansible role (through `fleet check-cert`)
// run before HAProxy is given a certificate, so an expired one, one for
// other names, or one whose key is not its own is refused with a clear
// error instead of being served.
package tlscert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files of a local certificate authority in its folder.
const (
	CAFile    = "ca.pem"     // the CA's certificate: what a browser or curl is told to trust
	CAKeyFile = "ca-key.pem" // its private key, 0600
)

// CA is a local certificate authority.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// LoadOrCreateCA reads the authority kept in dir, or makes one (ten years,
// ECDSA P-256) when dir holds none.
func LoadOrCreateCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return createCA(dir)
	}
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read the local CA's key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("local CA in %s: %w", dir, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("local CA in %s: its key cannot sign", dir)
	}
	return &CA{Cert: pair.Leaf, CertPEM: certPEM, key: signer}, nil
}

func createCA(dir string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"shortfleet local fleet"}, CommonName: "shortfleet local CA " + host},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("make the local CA: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFile(filepath.Join(dir, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, CAFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key}, nil
}

// SPKIHash is the base64 SHA-256 of the CA's public key, as Chromium's
// --ignore-certificate-errors-spki-list takes it.
func (ca *CA) SPKIHash() string {
	sum := sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Pool is a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue writes to path, in the one-file form HAProxy's crt takes, a server
// certificate for hosts (names or addresses) valid from now for validity,
// then the CA's certificate (the chain), then the key.
func (ca *CA) Issue(path string, hosts []string, validity time.Duration) error {
	chain, key, err := ca.issue(hosts, validity)
	if err != nil {
		return err
	}
	return writeFile(path, append(chain, key...), 0o600)
}

// IssuePair is Issue in the two-file form an ACME client writes and
// net/http loads: the chain (fullchain.pem) at certPath, the key
// (privkey.pem) at keyPath.
func (ca *CA) IssuePair(certPath, keyPath string, hosts []string, validity time.Duration) error {
	chain, key, err := ca.issue(hosts, validity)
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, key, 0o600); err != nil {
		return err
	}
	return writeFile(certPath, chain, 0o644)
}

// issue makes a server certificate and returns its chain (it, then the
// CA's certificate) and its key, PEM encoded.
func (ca *CA) issue(hosts []string, validity time.Duration) (chain, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"shortfleet local fleet"}, CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue a certificate for %s: %w", strings.Join(hosts, ", "), err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	chain = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.CertPEM...)
	return chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Ensure keeps the certificate at path if Check passes for hosts a month
// from now and the CA issued it; otherwise it issues a new one, valid a
// year. It reports whether it issued one.
func (ca *CA) Ensure(path string, hosts []string) (issued bool, err error) {
	if err := Check(path, hosts, time.Now().AddDate(0, 1, 0)); err == nil {
		if leaf, err := loadLeaf(path); err == nil && leaf.CheckSignatureFrom(ca.Cert) == nil {
			return false, nil
		}
	}
	return true, ca.Issue(path, hosts, 365*24*time.Hour)
}

// Check reads a PEM file holding a certificate chain (server certificate
// first) and its private key, as HAProxy's crt takes it, and returns a
// clear error unless the key is the certificate's, the certificate is
// valid at now, and it covers every host (a name or an address) the
// balancer answers for.
func Check(path string, hosts []string, now time.Time) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	// X509KeyPair skips blocks it does not want in each argument: given
	// the whole file twice it finds the chain in one and the key in the
	// other, and checks that the two belong together.
	return check(path, data, data, hosts, now)
}

// CheckPair is Check for a chain and a key kept in two files, as an ACME
// client writes them (certbot's fullchain.pem and privkey.pem): the
// Ansible role checks them so, on the control node, before it joins them
// into the balancer's one file.
func CheckPair(certPath, keyPath string, hosts []string, now time.Time) error {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	return check(certPath+" (key "+keyPath+")", certPEM, keyPEM, hosts, now)
}

// check is Check on a chain and a key already read; name says where they
// came from.
func check(name string, certPEM, keyPEM []byte, hosts []string, now time.Time) error {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("tls certificate %s: %w", name, err)
	}
	leaf := pair.Leaf
	switch {
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("tls certificate %s (%s) is not valid before %s", name, leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))
	case now.After(leaf.NotAfter):
		return fmt.Errorf("tls certificate %s (%s) expired on %s", name, leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	for _, h := range hosts {
		if err := leaf.VerifyHostname(h); err != nil {
			return fmt.Errorf("tls certificate %s does not cover %s, which the balancer answers for (it covers %s)", name, h, strings.Join(covered(leaf), ", "))
		}
	}
	return nil
}

func covered(c *x509.Certificate) []string {
	out := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	if len(out) == 0 {
		out = []string{"no names"}
	}
	return out
}

func loadLeaf(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return nil, errors.New("no certificate")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writeFile writes through a temporary file and a rename, so HAProxy or a
// reader never sees half a certificate.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
