package hostinit

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Systemctl is `systemctl` on a host whose init is hostinit: the verbs
// Ansible's systemd module and the roles' handlers use. It returns the
// exit status systemctl would.
func Systemctl(args []string, stdout, stderr io.Writer) int {
	var verb string
	var units []string
	now := false
	for _, a := range args {
		switch {
		case a == "--now":
			now = true
		case strings.HasPrefix(a, "-"):
			// --no-block, --no-pager, --quiet, --system, --property=...: no effect here
		case verb == "":
			verb = a
		default:
			units = append(units, a)
		}
	}
	post := func(action, unit string) int {
		resp, err := Client().Post("http://init/"+action+"/"+canonical(unit), "", nil)
		if err != nil {
			fmt.Fprintf(stderr, "System has not been booted with hostinit: %v\n", err)
			return 1
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			msg, _ := io.ReadAll(resp.Body)
			fmt.Fprintf(stderr, "Job for %s failed: %s", canonical(unit), msg)
			return 1
		}
		return 0
	}
	status := func(unit string) (Status, bool) {
		resp, err := Client().Get("http://init/status/" + canonical(unit))
		if err != nil {
			fmt.Fprintf(stderr, "System has not been booted with hostinit: %v\n", err)
			return Status{}, false
		}
		defer resp.Body.Close()
		var st Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			fmt.Fprintf(stderr, "bad answer from hostinit: %v\n", err)
			return Status{}, false
		}
		return st, true
	}
	each := func(f func(string) int) int {
		rc := 0
		for _, u := range units {
			if r := f(u); r != 0 {
				rc = r
			}
		}
		return rc
	}
	switch verb {
	case "daemon-reload", "daemon-reexec", "reset-failed", "mask", "unmask":
		return 0
	case "start", "stop", "restart":
		return each(func(u string) int { return post(verb, u) })
	case "reload", "reload-or-restart", "try-reload-or-restart":
		return each(func(u string) int { return post("reload", u) })
	case "try-restart", "condrestart":
		return each(func(u string) int {
			if st, ok := status(u); ok && st.Active == "active" {
				return post("restart", u)
			}
			return 0
		})
	case "enable", "disable":
		return each(func(u string) int {
			u = canonical(u)
			link := filepath.Join(WantsDir, u)
			if verb == "enable" {
				unit, err := FindUnit("/", u)
				if err != nil {
					fmt.Fprintf(stderr, "Failed to enable unit: Unit file %s does not exist.\n", u)
					return 1
				}
				if _, err := os.Lstat(link); err != nil {
					os.MkdirAll(WantsDir, 0o755)
					if err := os.Symlink(unit.Path, link); err != nil {
						fmt.Fprintln(stderr, err)
						return 1
					}
					fmt.Fprintf(stderr, "Created symlink %s → %s.\n", link, unit.Path)
				}
				if now {
					return post("start", u)
				}
				return 0
			}
			if err := os.Remove(link); err == nil {
				fmt.Fprintf(stderr, "Removed %s.\n", link)
			}
			if now {
				return post("stop", u)
			}
			return 0
		})
	case "is-enabled":
		return each(func(u string) int {
			st, ok := status(u)
			switch {
			case !ok:
				return 1
			case !st.Found:
				fmt.Fprintf(stderr, "Failed to get unit file state for %s: No such file or directory\n", canonical(u))
				return 1
			case st.Enabled:
				fmt.Fprintln(stdout, "enabled")
				return 0
			}
			fmt.Fprintln(stdout, "disabled")
			return 1
		})
	case "is-active", "is-failed":
		return each(func(u string) int {
			st, ok := status(u)
			if !ok {
				return 1
			}
			fmt.Fprintln(stdout, st.Active)
			if (verb == "is-active") == (st.Active == "active") || (verb == "is-failed" && st.Active == "failed") {
				return 0
			}
			return 3
		})
	case "show", "status":
		return each(func(u string) int {
			st, ok := status(u)
			if !ok {
				return 1
			}
			if verb == "status" {
				fmt.Fprintf(stdout, "● %s - Active: %s (pid %d, restarts %d) %s\n", st.Name, st.Active, st.MainPID, st.Restarts, st.LastFailure)
				if st.Active != "active" {
					return 3
				}
				return 0
			}
			load, sub, file := "loaded", "dead", "disabled"
			if !st.Found {
				load = "not-found"
			}
			switch st.Active {
			case "active":
				sub = "running"
			case "failed":
				sub = "failed"
			}
			if st.Enabled {
				file = "enabled"
			}
			fmt.Fprintf(stdout, "Id=%s\nNames=%s\nLoadState=%s\nActiveState=%s\nSubState=%s\nUnitFileState=%s\nMainPID=%d\nNRestarts=%d\n",
				st.Name, st.Name, load, st.Active, sub, file, st.MainPID, st.Restarts)
			return 0
		})
	}
	fmt.Fprintf(stderr, "systemctl (hostinit): verb %q is not supported\n", verb)
	return 1
}
