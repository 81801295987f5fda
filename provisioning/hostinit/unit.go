// Package hostinit stands in for systemd on the throwaway hosts the
// Ansible tests apply the playbooks to: chroots on this machine, where
// systemd can't be PID 1. A host's init is the hostinit command
// (cmd/hostinit), which serves the units Ansible installed under
// /etc/systemd/system (and the packages' under /lib/systemd/system)
// through the same supervisor the local fleet uses (package proc);
// `systemctl` on the host is the same binary under that name, which asks
// it. It reads only what a service needs to run: Exec*, User, Group,
// Environment, EnvironmentFile, WorkingDirectory, Restart. Sandboxing
// directives are not applied here; `systemd-analyze verify` checks them.
package hostinit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// UnitDirs are where units are looked up, in order.
var UnitDirs = []string{"/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}

// Unit is what hostinit reads of a service unit.
type Unit struct {
	Name             string
	Path             string
	ExecStartPre     [][]string
	ExecStartPost    [][]string // a oneshot's further ExecStart lines
	ExecStart        []string
	ExecReload       [][]string
	ExecStop         [][]string
	Type             string // simple (also exec, notify), forking or oneshot
	PIDFile          string // forking: where the started daemon's pid appears
	RemainAfterExit  bool   // oneshot: active once ExecStart has run
	User, Group      string
	Environment      []string // KEY=VALUE, in order: later wins
	EnvironmentFiles []string // "-" prefix: optional
	WorkingDirectory string
	Restart          bool
}

// FindUnit finds and parses name (".service" may be left off) under root.
// An instance of a template (postgresql@15-main) is read from the template
// (postgresql@.service) with %i and %I replaced.
func FindUnit(root, name string) (*Unit, error) {
	if !strings.Contains(name, ".") {
		name += ".service"
	}
	for _, try := range []struct{ file, instance string }{{name, ""}, templateOf(name)} {
		if try.file == "" {
			continue
		}
		for _, d := range UnitDirs {
			p := filepath.Join(root, d, try.file)
			if _, err := os.Stat(p); err == nil {
				return ParseUnit(name, p, try.instance)
			}
		}
	}
	return nil, fmt.Errorf("unit %s not found", name)
}

// templateOf returns the template file and instance of a@b.service.
func templateOf(name string) (t struct{ file, instance string }) {
	at := strings.IndexByte(name, '@')
	dot := strings.LastIndexByte(name, '.')
	if at < 0 || dot < at {
		return t
	}
	t.file, t.instance = name[:at+1]+name[dot:], name[at+1:dot]
	return t
}

// ParseUnit reads a unit file; instance, if any, replaces %i and %I. The
// name specifiers are replaced too: %n (etcd.service), %N (etcd) and %p
// (the part before @ or the suffix), which Debian's etcd.service reads its
// settings by (EnvironmentFile=-/etc/default/%p).
func ParseUnit(name, path, instance string) (*Unit, error) {
	full := name
	if !strings.Contains(full, ".") {
		full += ".service"
	}
	bare := strings.TrimSuffix(full, filepath.Ext(full))
	prefix, _, _ := strings.Cut(bare, "@")
	specifiers := strings.NewReplacer("%i", instance, "%I", instance, "%n", full, "%N", bare, "%p", prefix, "%%", "%")
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	u := &Unit{Name: name, Path: path}
	section := ""
	sc := bufio.NewScanner(f)
	var cont string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasSuffix(line, `\`) {
			cont += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, cont = cont+line, ""
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = strings.Trim(line, "[]")
			continue
		}
		if section != "Service" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not key=value", path, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		v = specifiers.Replace(v)
		switch k {
		case "Type":
			u.Type = v
		case "PIDFile":
			u.PIDFile = v
		case "RemainAfterExit":
			u.RemainAfterExit = v == "yes" || v == "on" || v == "true" || v == "1"
		case "ExecStop":
			u.ExecStop = append(u.ExecStop, splitExec(v))
		case "ExecStart":
			// A oneshot may have several; the others, one.
			if u.ExecStart != nil {
				u.ExecStartPost = append(u.ExecStartPost, splitExec(v))
			} else {
				u.ExecStart = splitExec(v)
			}
		case "ExecStartPre":
			u.ExecStartPre = append(u.ExecStartPre, splitExec(v))
		case "ExecReload":
			if v == "" {
				u.ExecReload = nil
			} else {
				u.ExecReload = append(u.ExecReload, splitExec(v))
			}
		case "User":
			u.User = v
		case "Group":
			u.Group = v
		case "Environment":
			u.Environment = append(u.Environment, splitWords(v)...)
		case "EnvironmentFile":
			u.EnvironmentFiles = append(u.EnvironmentFiles, v)
		case "WorkingDirectory":
			u.WorkingDirectory = strings.TrimPrefix(v, "-")
		case "Restart":
			u.Restart = v != "no"
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(u.ExecStart) == 0 {
		return nil, fmt.Errorf("%s has no ExecStart", path)
	}
	return u, nil
}

// splitExec splits an Exec line into words, dropping the prefixes systemd
// allows before the program (-, @, +, !, :).
func splitExec(v string) []string {
	v = strings.TrimLeft(v, "-@+!:")
	return splitWords(v)
}

// splitWords splits on spaces, keeping double- or single-quoted words
// whole, as systemd does.
func splitWords(v string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	in := false
	for _, r := range v {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// ReadEnvironmentFile reads KEY=VALUE lines; # and ; start comments.
func ReadEnvironmentFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		env = append(env, strings.TrimSpace(k)+"="+v)
	}
	return env, nil
}

// Expand substitutes $VAR and ${VAR} in an Exec line's words from env;
// a word that is exactly $VAR splits into the value's words, as systemd's
// does.
func Expand(words []string, env map[string]string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") && isName(w[1:]) {
			out = append(out, strings.Fields(env[w[1:]])...)
			continue
		}
		out = append(out, expandWord(w, env))
	}
	return out
}

// expandWord replaces ${NAME} and $NAME where NAME is a variable name, and
// $$ by $, leaving any other $ (a shell's $! in sh -c, say) alone.
func expandWord(w string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] != '$' || i+1 == len(w) {
			b.WriteByte(w[i])
			continue
		}
		switch {
		case w[i+1] == '$':
			b.WriteByte('$')
			i++
		case w[i+1] == '{':
			if end := strings.IndexByte(w[i:], '}'); end > 0 && isName(w[i+2:i+end]) {
				b.WriteString(env[w[i+2:i+end]])
				i += end
				continue
			}
			b.WriteByte('$')
		default:
			j := i + 1
			for j < len(w) && isName(w[i+1:j+1]) {
				j++
			}
			if j == i+1 || w[i+1] >= '0' && w[i+1] <= '9' {
				b.WriteByte('$')
				continue
			}
			b.WriteString(env[w[i+1:j]])
			i = j - 1
		}
	}
	return b.String()
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
