package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Usage is what a process has used so far, as Linux's /proc reports it.
type Usage struct {
	// PeakRSS is the high-water mark of the resident set, in bytes (VmHWM).
	PeakRSS int64
	// RSS is the resident set now, in bytes (VmRSS).
	RSS int64
	// CPU is the processor time of all the process's threads, live and
	// ended, in user plus kernel mode (utime + stime).
	CPU time.Duration
}

// Usage reads the process's usage from /proc. It fails once the process has
// exited, so read it before Stop.
func (p *Process) Usage() (Usage, error) {
	if !p.Running() {
		return Usage{}, fmt.Errorf("%s has exited", p.Name)
	}
	return ReadUsage(p.Cmd.Process.Pid)
}

// ReadUsage reads the usage of process pid from /proc/<pid>/status and
// /proc/<pid>/stat.
func ReadUsage(pid int) (Usage, error) {
	stat, err := ReadProcStat(pid)
	if err != nil {
		return Usage{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, err
	}
	u := Usage{CPU: stat.UTime + stat.STime}
	if u.PeakRSS, err = statusKiB(status, "VmHWM"); err != nil {
		return Usage{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	if u.RSS, err = statusKiB(status, "VmRSS"); err != nil {
		return Usage{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return u, nil
}

// statusKiB returns the value in bytes of a "Name:   1234 kB" line of
// /proc/<pid>/status.
func statusKiB(status []byte, name string) (int64, error) {
	lines := bufio.NewScanner(bytes.NewReader(status))
	for lines.Scan() {
		key, value, ok := strings.Cut(lines.Text(), ":")
		if !ok || key != name {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return kib << 10, nil
	}
	return 0, fmt.Errorf("no %s line", name)
}

// ProcStat holds the fields of /proc/<pid>/stat that the benchmark uses.
type ProcStat struct {
	// PPID is the parent's process id.
	PPID int
	// UTime and STime are the process's own user and kernel CPU time (all
	// its threads); CUTime and CSTime those of its children that it has
	// waited for.
	UTime, STime, CUTime, CSTime time.Duration
}

// ReadProcStat reads /proc/<pid>/stat, converting clock ticks with the
// system's CLK_TCK.
func ReadProcStat(pid int) (ProcStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStat{}, err
	}
	// The command name, field 2, is in parentheses and may hold spaces;
	// the fields after the last ')' start with field 3 (state).
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return ProcStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(data[end+1:]))
	const ppid, utime, cstime = 1, 11, 14 // fields 4, 14 and 17, counted from field 3
	if len(fields) <= cstime {
		return ProcStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	var ticks [4]int64
	for i := range ticks {
		if ticks[i], err = strconv.ParseInt(fields[utime+i], 10, 64); err != nil {
			return ProcStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	parent, err := strconv.Atoi(fields[ppid])
	if err != nil {
		return ProcStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	tick := ClockTick()
	return ProcStat{
		PPID:  parent,
		UTime: time.Duration(ticks[0]) * tick, STime: time.Duration(ticks[1]) * tick,
		CUTime: time.Duration(ticks[2]) * tick, CSTime: time.Duration(ticks[3]) * tick,
	}, nil
}

// defaultClockTicks is USER_HZ on every Linux architecture Go supports,
// used when `getconf CLK_TCK` cannot be run.
const defaultClockTicks = 100

var clockTick = sync.OnceValue(func() time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hz := int64(defaultClockTicks)
	if out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			hz = n
		}
	}
	return time.Second / time.Duration(hz)
})

// ClockTick returns the length of the clock tick in which /proc counts CPU
// time (1/CLK_TCK, from `getconf CLK_TCK`).
func ClockTick() time.Duration { return clockTick() }

// ErrNoProc reports that /proc is not available (not Linux).
var ErrNoProc = errors.New("harness: /proc is not available")

// Children returns the process ids whose parent is pid, by scanning /proc.
func Children(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, errors.Join(ErrNoProc, err)
	}
	var children []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := ReadProcStat(child)
		if err != nil {
			continue // it exited meanwhile
		}
		if stat.PPID == pid {
			children = append(children, child)
		}
	}
	return children, nil
}
