package localfleet_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/pgcluster"
)

// cutHost cuts a host of the fleet off the network, as a pulled cable
// would: nftables drops every packet to or from its address, and every
// packet its processes send (on one machine they connect from 127.0.0.1,
// not from their host's address, so they are moved into a cgroup of
// their own, which nftables matches). Packets are dropped, not refused:
// connections hang, as across a real cut. The returned function heals it.
func cutHost(t *testing.T, addr string, pids []int) (heal func()) {
	t.Helper()
	root, err := cgroup2Root()
	if err != nil {
		t.Fatalf("the partition drill needs cgroup v2: %v", err)
	}
	name := "shortfleet_cut_" + strings.ReplaceAll(addr, ".", "_")
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	move := func(to string, pids []int) {
		for _, p := range pids {
			// A process that ended meanwhile is no error.
			_ = os.WriteFile(filepath.Join(to, "cgroup.procs"), []byte(strconv.Itoa(p)), 0)
		}
	}
	var all []int
	for _, p := range pids {
		all = append(all, pgcluster.ProcessTree(p)...)
	}
	move(dir, all)
	// nft names a cgroup by its path under /sys/fs/cgroup, wherever
	// cgroup2 is mounted beneath it (Debian's hybrid layout: unified/).
	rel, err := filepath.Rel("/sys/fs/cgroup", dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("cgroup2 is mounted at %s, outside /sys/fs/cgroup, where nft looks", root)
	}
	rules := fmt.Sprintf(`table inet %[1]s {
	chain out {
		type filter hook output priority 0; policy accept;
		ip saddr %[2]s drop
		ip daddr %[2]s drop
		socket cgroupv2 level 1 "%[3]s" drop
	}
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr %[2]s drop
		ip daddr %[2]s drop
	}
}
`, name, addr, rel)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	// A socket stays in the cgroup it was made in: the connections the
	// host's processes opened before the cut (Patroni's to etcd, say) are
	// aborted, and those they open again are dropped.
	abortSockets(t, all)
	var once sync.Once
	heal = func() {
		once.Do(func() {
			if out, err := exec.Command("nft", "delete", "table", "inet", name).CombinedOutput(); err != nil {
				t.Errorf("nft delete table: %v: %s", err, out)
			}
			data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			var left []int
			for _, f := range strings.Fields(string(data)) {
				if p, err := strconv.Atoi(f); err == nil {
					left = append(left, p)
				}
			}
			move(root, left)
			_ = os.Remove(dir)
		})
	}
	t.Cleanup(heal)
	return heal
}

// abortSockets aborts (ss -K) every TCP connection the processes pids
// hold.
func abortSockets(t *testing.T, pids []int) {
	t.Helper()
	inodes := map[string]bool{}
	for _, p := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p, fd.Name()))
			if err == nil && strings.HasPrefix(link, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
			}
		}
	}
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		// sl local_address rem_address st ... uid timeout inode
		f := strings.Fields(line)
		if len(f) < 10 || !inodes[f[9]] || f[3] != "01" { // 01: established
			continue
		}
		la, lp := hexAddr(f[1])
		ra, rp := hexAddr(f[2])
		out, err := exec.Command("ss", "-K", "src", la, "sport", "=", ":"+lp, "dst", ra, "dport", "=", ":"+rp).CombinedOutput()
		if err != nil {
			t.Fatalf("ss -K: %v: %s", err, out)
		}
	}
}

// hexAddr reads /proc/net/tcp's address:port (hex, the address in host
// byte order, little-endian here).
func hexAddr(s string) (addr, port string) {
	a, p, _ := strings.Cut(s, ":")
	n, _ := strconv.ParseUint(a, 16, 32)
	pn, _ := strconv.ParseUint(p, 16, 16)
	return fmt.Sprintf("%d.%d.%d.%d", n&0xff, n>>8&0xff, n>>16&0xff, n>>24), strconv.FormatUint(pn, 10)
}

// cgroup2Root is where the cgroup v2 hierarchy is mounted.
func cgroup2Root() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype ...
		before, after, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(after, "cgroup2 ") {
			continue
		}
		if fields := strings.Fields(before); len(fields) >= 5 {
			return fields[4], nil
		}
	}
	return "", fmt.Errorf("no cgroup2 mount in /proc/self/mountinfo")
}

// hostPIDs are the processes of the fleet that run on host: its Patroni
// and Postgres, its proxy, its app instance.
func hostPIDs(t *testing.T, f *localfleet.Fleet, host string) []int {
	t.Helper()
	var pids []int
	for _, c := range f.DBs {
		if c.Host() != host {
			continue
		}
		pids = append(pids, c.Process().Pid())
		pm, err := c.PostmasterPID()
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pm)
	}
	for i, p := range f.Proxies {
		if f.ProxyHost(i) == host {
			pids = append(pids, p.Process().Pid())
		}
	}
	if a := f.AppOn(host); a != nil {
		pids = append(pids, a.Process().Pid())
	}
	return pids
}

// roleSampler asks every member, every 100 ms, over its Unix socket (which
// no cut reaches), whether it is a primary, and keeps the most primaries
// seen at once.
type roleSampler struct {
	mu      sync.Mutex
	samples int
	most    int
	firsts  map[string]time.Time // when each member was first seen primary / in recovery
	stop    chan struct{}
	done    chan struct{}
}

func sampleRoles(f *localfleet.Fleet) *roleSampler {
	s := &roleSampler{firsts: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			primaries := 0
			for _, c := range f.DBs {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				conn, err := c.ConnectLocal(ctx, "postgres")
				if err == nil {
					var recovery bool
					if conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovery) == nil {
						role := "replica"
						if !recovery {
							primaries++
							role = "primary"
						}
						s.mu.Lock()
						if _, ok := s.firsts[c.Name()+" "+role]; !ok {
							s.firsts[c.Name()+" "+role] = time.Now()
						}
						s.mu.Unlock()
					}
					conn.Close(context.Background())
				}
				cancel()
			}
			s.mu.Lock()
			s.samples++
			s.most = max(s.most, primaries)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return s
}

// end stops sampling and returns the samples taken and the most
// primaries seen in one.
func (s *roleSampler) end() (samples, most int) {
	close(s.stop)
	<-s.done
	return s.samples, s.most
}

// first is when member was first seen in role ("primary" or "replica")
// since sampling began.
func (s *roleSampler) first(member, role string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.firsts[member+" "+role]
	return t, ok
}
