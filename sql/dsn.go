package sql

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// DSNSource is where the primary app and the mapreduce job find their
// database. A command line is public (ps shows it to every user of the
// host), so the -dsn flag may name the database but never hold its
// password; the password comes from the environment or a file.
type DSNSource struct {
	// Flag is -dsn as given on the command line, "" when not given.
	Flag string
	// Env is SHORTFLEET_DSN, which may hold the password.
	Env string
	// Password is SHORTFLEET_DB_PASSWORD.
	Password string
	// PasswordFile is -db-password-file: a file holding the password (one
	// trailing newline is not part of it).
	PasswordFile string
}

// Resolve returns the connection string to use: -dsn, else SHORTFLEET_DSN,
// with the password from SHORTFLEET_DB_PASSWORD or -db-password-file added.
// It refuses a -dsn holding a password, and two passwords at once.
func (s DSNSource) Resolve() (string, error) {
	if s.Flag != "" && DSNHasPassword(s.Flag) {
		return "", errors.New("-dsn holds a password, which ps shows to every user of this host: " +
			"put the password in SHORTFLEET_DB_PASSWORD or a file named by -db-password-file, or the whole URL in SHORTFLEET_DSN")
	}
	dsn := s.Flag
	if dsn == "" {
		dsn = s.Env
	}
	if dsn == "" {
		return "", errors.New("-dsn or SHORTFLEET_DSN must name the primary database")
	}
	password := s.Password
	if s.PasswordFile != "" {
		if password != "" {
			return "", errors.New("SHORTFLEET_DB_PASSWORD and -db-password-file both give a password: keep one")
		}
		data, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("read -db-password-file: %w", err)
		}
		password = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if password == "" {
			return "", fmt.Errorf("-db-password-file %s is empty", s.PasswordFile)
		}
	}
	if password == "" {
		return dsn, nil
	}
	if DSNHasPassword(dsn) {
		return "", errors.New("SHORTFLEET_DSN holds a password and SHORTFLEET_DB_PASSWORD or -db-password-file gives another: keep one")
	}
	return DSNWithPassword(dsn, password)
}

// secretKey reports whether a connection string keyword carries a secret.
func secretKey(k string) bool { return k == "password" || k == "sslpassword" }

// DSNHasPassword reports whether a connection string, a postgres:// URL or
// libpq keyword/value pairs, holds a password (or an SSL key's password).
// It reads the string as pgx does, and errs towards yes: a string it cannot
// read, or a password key with an empty value, counts as holding one.
func DSNHasPassword(dsn string) bool {
	rest, ok := strings.CutPrefix(dsn, "postgresql://")
	if !ok {
		rest, ok = strings.CutPrefix(dsn, "postgres://")
	}
	if !ok {
		found, ok := keywordSecret(dsn)
		return found || !ok && strings.Contains(strings.ToLower(dsn), "password")
	}
	// As libpq: the user information ends at the first '@' before any '/'.
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		if _, pw, ok := strings.Cut(rest[:i], ":"); ok && pw != "" {
			return true
		}
		rest = rest[i+1:]
	}
	// Every piece between '?' and '&' is read as a query parameter, not only
	// those of the real query: a '?' inside an IPv6 host or a value then
	// costs a false alarm, never a missed password.
	for _, piece := range strings.FieldsFunc(rest, func(r rune) bool { return r == '?' || r == '&' }) {
		k, _, _ := strings.Cut(piece, "=")
		if secretKey(percentDecode(strings.Trim(k, " "))) {
			return true
		}
	}
	return false
}

// percentDecode decodes every valid %XX and keeps anything else as it is.
func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

const kvSpace = " \t\n\r\v\f"

// keywordSecret reads libpq keyword/value pairs as pgx's parser does and
// reports whether a secret keyword is among them; ok is false when
// the string is not keyword/value pairs.
func keywordSecret(s string) (found, ok bool) {
	s = strings.TrimLeft(s, kvSpace)
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return found, false
		}
		key := strings.Trim(s[:eq], kvSpace)
		if key == "" || strings.ContainsAny(key, kvSpace) {
			return found, false
		}
		s = strings.TrimLeft(s[eq+1:], kvSpace)
		switch {
		case len(s) == 0:
		case s[0] != '\'':
			end := 0
			for ; end < len(s); end++ {
				if strings.IndexByte(kvSpace, s[end]) >= 0 {
					break
				}
				if s[end] == '\\' {
					end++
					if end == len(s) {
						break
					}
				}
			}
			s = strings.TrimLeft(s[end:], kvSpace)
		default:
			s = s[1:]
			end := 0
			for ; end < len(s); end++ {
				if s[end] == '\'' {
					break
				}
				if s[end] == '\\' {
					end++
					if end == len(s) {
						return found, false
					}
				}
			}
			if end == len(s) {
				return found, false
			}
			s = strings.TrimLeft(s[end+1:], kvSpace)
		}
		if secretKey(key) {
			found = true // even empty: a pair put first would not win over it
		}
	}
	return found, true
}

// DSNWithPassword returns dsn, which must hold no password, with password
// added: in a URL's user information, or as a quoted keyword/value pair put
// first.
func DSNWithPassword(dsn, password string) (string, error) {
	if strings.IndexByte(password, 0) >= 0 {
		return "", errors.New("the database password holds a NUL byte")
	}
	for _, prefix := range []string{"postgresql://", "postgres://"} {
		rest, ok := strings.CutPrefix(dsn, prefix)
		if !ok {
			continue
		}
		user := ""
		if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
			user, _, _ = strings.Cut(rest[:i], ":")
			rest = rest[i+1:]
		}
		return prefix + user + ":" + percentEncode(password) + "@" + rest, nil
	}
	// Put first, the pair cannot run into whatever the string ends with (a
	// trailing backslash escapes what follows it).
	esc := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
	return "password='" + esc + "' " + dsn, nil
}

// percentEncode encodes every byte but RFC 3986's unreserved ones, so the
// password holds no '@', '/', ':' or space that would end it early.
func percentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
