// Package pgcluster runs a throwaway PostgreSQL cluster: initdb into a fresh
// directory, the postgres server as a child process listening on loopback,
// and removal of everything on Stop. Tests, the test-run wrapper
// (internal/pgtest/pgrun), `tasker dev` and the benchmark use it.
//
// The server runs as a child of the calling process with a parent-death
// signal, so it dies with that process. A process that crashes still leaves its
// directory behind; the next Start in the same parent directory sweeps
// directories whose owning process is gone.
package pgcluster

import (
	"log/slog"
	"maps"
	"os"
	"syscall"
	"time"
)

// Defaults applied by Config.withDefaults.
const (
	// DefaultStartTimeout bounds initdb plus server start when
	// Config.StartTimeout is zero.
	DefaultStartTimeout = 30 * time.Second
	// DefaultStopTimeout bounds the fast shutdown in Stop when
	// Config.StopTimeout is zero.
	DefaultStopTimeout = 10 * time.Second
	// DefaultRunAs is the OS user that runs the server when this process is
	// root and Config.RunAs is empty.
	DefaultRunAs = "postgres"
)

// dirPrefix starts the name of every cluster directory; Start sweeps stale
// siblings by this prefix.
const dirPrefix = "tasker-pg-"

// Config describes the cluster that Start creates. The zero value is a fast,
// non-durable cluster on a free port under os.TempDir().
type Config struct {
	// Dir is the parent directory of the cluster's data and socket
	// directories. Start creates a fresh subdirectory "tasker-pg-*" in it.
	// Default: for a non-durable cluster /dev/shm when it is a RAM file system
	// with at least 1 GiB free (much faster), otherwise os.TempDir(). When
	// this process is root the server runs as RunAs, which must be able to
	// traverse Dir.
	Dir string
	// Port is the TCP port to listen on, on 127.0.0.1 only; 0 picks a free
	// port (and retries with another one if it is taken meanwhile).
	Port int
	// Durable keeps fsync, synchronous_commit and full_page_writes on (for
	// benchmarks). The default, false, turns them off: fast and crash-unsafe,
	// which is what tests want.
	Durable bool
	// Settings are extra postgresql.conf settings (name → value), applied
	// after and over the defaults of this package.
	Settings map[string]string
	// BinDir is the directory holding the initdb and postgres binaries;
	// default: discovered (pg_config --bindir, then the newest
	// /usr/lib/postgresql/*/bin, then PATH).
	BinDir string
	// RunAs is the OS user that runs initdb and postgres when this process is
	// root (PostgreSQL refuses to run as root); default DefaultRunAs. Ignored
	// when not root.
	RunAs string
	// Logger receives progress messages; default: discard.
	Logger *slog.Logger
	// StartTimeout bounds initdb plus server start; default DefaultStartTimeout.
	StartTimeout time.Duration
	// StopTimeout bounds the fast shutdown before Stop kills the server;
	// default DefaultStopTimeout.
	StopTimeout time.Duration
}

// withDefaults returns a copy of c with every unset field given its default.
func (c Config) withDefaults() Config {
	if c.Dir == "" {
		c.Dir = defaultDir(c.Durable)
	}
	if c.RunAs == "" {
		c.RunAs = DefaultRunAs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	c.Settings = maps.Clone(c.Settings)
	return c
}

// serverSettings returns the postgresql.conf settings the server is started
// with: this package's defaults, overlaid with c.Settings.
func (c Config) serverSettings() map[string]string {
	settings := map[string]string{
		// Tests run many pools in parallel against one server.
		"max_connections": "300",
		"shared_buffers":  "128MB",
		// Logs go to the log file through stderr, never to a collector.
		"logging_collector": "off",
	}
	if !c.Durable {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
		// Dynamic shared memory as files in the data directory rather than
		// in /dev/shm, so that a killed server leaves nothing behind once
		// its directory is removed.
		settings["dynamic_shared_memory_type"] = "mmap"
	}
	maps.Copy(settings, c.Settings)
	return settings
}

// reportedSettings names the settings that Cluster.Settings reports, besides
// those of Config.Settings.
var reportedSettings = []string{
	"server_version", "fsync", "synchronous_commit", "full_page_writes",
	"max_connections", "shared_buffers",
}

// memoryDir is the RAM-backed directory that a non-durable cluster prefers:
// on a disk-backed file system CREATE DATABASE takes 10–20 times longer and
// initdb about twice as long.
const memoryDir = "/dev/shm"

// tmpfsMagic is the file system type statfs reports for tmpfs.
const tmpfsMagic = 0x01021994

// minMemoryDirFree is the free space memoryDir needs to be used: a fresh
// cluster takes about 40 MB, and a container's /dev/shm is often only 64 MB.
const minMemoryDirFree = 1 << 30

// defaultDir returns the parent directory for a cluster when Config.Dir is
// empty: memoryDir for a non-durable cluster when it is a usable RAM file
// system, os.TempDir() otherwise.
func defaultDir(durable bool) string {
	if !durable && usableMemoryDir(memoryDir) {
		return memoryDir
	}
	return os.TempDir()
}

// usableMemoryDir reports whether dir is a writable tmpfs with at least
// minMemoryDirFree bytes available.
func usableMemoryDir(dir string) bool {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return false
	}
	if int64(fs.Type) != tmpfsMagic { //nolint:unconvert // Statfs_t field types differ between architectures
		return false
	}
	if uint64(fs.Bavail)*uint64(fs.Bsize) < minMemoryDirFree { //nolint:unconvert // as above
		return false
	}
	const writable = 0x2 // W_OK
	return syscall.Access(dir, writable) == nil
}
