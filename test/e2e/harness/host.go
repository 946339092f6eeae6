package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Machine describes the computer a measurement runs on, for the reports of
// the benchmark and the profiler.
type Machine struct {
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	MemoryMiB int64  `json:"memory_mib"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
	// LoadAverage is /proc/loadavg when the machine was read: other work
	// on the machine shows here.
	LoadAverage string `json:"load_average"`
}

// ReadMachine describes this machine from /proc; what cannot be read stays
// empty.
func ReadMachine() Machine {
	m := Machine{
		Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, LoadAverage: LoadAverage(),
	}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kib, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
		m.MemoryMiB = kib >> 10
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// procField returns the value of the first "name: value" line of a /proc
// file, or "".
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		key, value, ok := strings.Cut(lines.Text(), ":")
		if ok && strings.TrimSpace(key) == name {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// LoadAverage returns the 1, 5 and 15 minute load averages of
// /proc/loadavg, or "unknown".
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(data))
	return strings.Join(fields[:min(3, len(fields))], " ")
}

// MachineTicks are the machine's CPU time counters of /proc/stat (its
// "cpu" line), in clock ticks, summed over every core.
type MachineTicks struct {
	// Total is all of it; Busy the time spent running (user, nice, system,
	// irq, softirq); Steal the time a virtual machine's cores waited for the
	// host, which ran something else.
	Total, Busy, Steal uint64
}

// ReadMachineTicks reads the machine's CPU counters.
func ReadMachineTicks() (MachineTicks, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineTicks{}, err
	}
	return parseMachineTicks(string(data))
}

// parseMachineTicks parses the "cpu" line of /proc/stat: user nice system
// idle iowait irq softirq steal (guest time is counted in user already).
func parseMachineTicks(stat string) (MachineTicks, error) {
	for line := range strings.Lines(stat) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return MachineTicks{}, fmt.Errorf("/proc/stat: a cpu line of %d fields", len(f))
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return MachineTicks{}, fmt.Errorf("/proc/stat: %w", err)
			}
			v[i] = n
		}
		user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		busy := user + nice + system + irq + softirq
		return MachineTicks{Total: busy + idle + iowait + steal, Busy: busy, Steal: steal}, nil
	}
	return MachineTicks{}, errors.New("/proc/stat has no cpu line")
}

// Percent returns, from t to later, the busy and stolen shares of the
// machine's CPU time, in percent.
func (t MachineTicks) Percent(later MachineTicks) (busy, steal float64) {
	total := float64(later.Total - t.Total)
	if total <= 0 {
		return 0, 0
	}
	return 100 * float64(later.Busy-t.Busy) / total, 100 * float64(later.Steal-t.Steal) / total
}

// FileSystemOf describes the mount holding path ("ext4 on /dev/sda1
// mounted at /"), from /proc/mounts: the longest mount point that prefixes
// it. It returns "unknown" when /proc/mounts cannot be read.
func FileSystemOf(path string) string {
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "unknown"
	}
	best, found := "", "unknown"
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(path, f[1]) || len(f[1]) < len(best) {
			continue
		}
		best, found = f[1], f[2]+" on "+f[0]+" mounted at "+f[1]
	}
	return found
}

// TreeCPU returns the CPU time (utime + stime) of process pid, of the
// children it has waited for, and of its live children: for a PostgreSQL
// postmaster, that of the whole server, backends that have exited included.
// A child that exits between the scan and its read is missed until its
// parent reaps it.
func TreeCPU(pid int) (time.Duration, error) {
	st, err := ReadProcStat(pid)
	if err != nil {
		return 0, err
	}
	total := st.UTime + st.STime + st.CUTime + st.CSTime
	children, err := Children(pid)
	if err != nil {
		return 0, err
	}
	for _, child := range children {
		if cs, err := ReadProcStat(child); err == nil { // a child may end meanwhile
			total += cs.UTime + cs.STime
		}
	}
	return total, nil
}

// SelfCPU returns the CPU time (utime + stime) of this process.
func SelfCPU() (time.Duration, error) {
	st, err := ReadProcStat(os.Getpid())
	if err != nil {
		return 0, err
	}
	return st.UTime + st.STime, nil
}

// Postmaster returns the process id of the PostgreSQL server that conn is
// connected to (the parent of its backend), for TreeCPU. The server must
// run on this machine.
func Postmaster(ctx context.Context, conn interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
},
) (int, error) {
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, err
	}
	st, err := ReadProcStat(backend)
	if err != nil {
		return 0, fmt.Errorf("finding the postmaster: %w", err)
	}
	return st.PPID, nil
}
