package pgcluster

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// unownedGrace is how long a cluster directory without a readable owner file
// is left alone: its creator may be about to write the file.
const unownedGrace = time.Minute

// writeOwner records this process as the owner of the cluster directory dir.
func writeOwner(dir string) error {
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := os.WriteFile(filepath.Join(dir, ownerFileName), []byte(pid), 0o600); err != nil {
		return fmt.Errorf("pgcluster: writing owner file: %w", err)
	}
	return nil
}

// sweep removes the cluster directories under parent whose owner process is
// gone (a test binary that panicked or was killed), killing any server still
// running in them. Failures are logged, never returned: a leftover directory
// must not stop a new cluster from starting.
func sweep(parent string, logger *slog.Logger) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		logger.Debug("sweep: reading parent directory", "dir", parent, "err", err)
		return
	}
	for _, entry := range entries {
		if !entry.IsDir() || !strings.HasPrefix(entry.Name(), dirPrefix) {
			continue
		}
		dir := filepath.Join(parent, entry.Name())
		if !abandoned(dir) {
			continue
		}
		killServer(dir)
		if err := removeAllRetry(dir); err != nil {
			logger.Warn("sweep: removing abandoned cluster", "dir", dir, "err", err)
			continue
		}
		logger.Info("sweep: removed abandoned cluster", "dir", dir)
	}
}

// abandoned reports whether the process that created the cluster directory
// dir has exited.
func abandoned(dir string) bool {
	pid, err := readPID(filepath.Join(dir, ownerFileName))
	if err != nil {
		info, statErr := os.Stat(dir)
		return statErr == nil && time.Since(info.ModTime()) > unownedGrace
	}
	return pid != os.Getpid() && !processAlive(pid)
}

// killServer kills the postmaster recorded in dir's postmaster.pid, with its
// process group, when that process is still running and really is the server
// of dir (the pid may have been reused).
func killServer(dir string) {
	dataDir := filepath.Join(dir, dataDirName)
	pid, err := readPID(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil || !processAlive(pid) || !servesDataDir(pid, dataDir) {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if !processAlive(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPID reads the process id on the first line of the file at path.
func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pgcluster: %s: no process id", path)
	}
	return pid, nil
}

// processAlive reports whether process pid exists and is not a zombie.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	// The state is the first field after the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// servesDataDir reports whether process pid's command line names dataDir,
// i.e. it is the postmaster that Start launched with -D dataDir.
func servesDataDir(pid int, dataDir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
		if string(arg) == dataDir {
			return true
		}
	}
	return false
}

// removeAllRetry removes dir, retrying briefly while exiting server
// processes may still create files in it.
func removeAllRetry(dir string) error {
	var err error
	for range 5 {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}
