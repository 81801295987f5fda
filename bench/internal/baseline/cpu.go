package baseline

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times, on Linux.
const clockTick = 100

// CPUTime returns the user+system CPU time used so far by pid and its
// children that are still alive (nginx's workers, say).
func CPUTime(pid int) time.Duration {
	user, system := CPUTimes(pid)
	return user + system
}

// CPUTimes is CPUTime split into user and system (kernel) time.
func CPUTimes(pid int) (user, system time.Duration) {
	user, system = procCPU(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if ppid(child) == pid {
			u, s := procCPU(child)
			user, system = user+u, system+s
		}
	}
	return user, system
}

// statFields returns the fields of /proc/<pid>/stat after the command name.
func statFields(pid int) []string {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func ppid(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return -1
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

func procCPU(pid int) (user, system time.Duration) {
	f := statFields(pid)
	if len(f) < 13 {
		return 0, 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime) * time.Second / clockTick, time.Duration(stime) * time.Second / clockTick
}
