package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// errPortInUse reports that the server could not bind its port.
var errPortInUse = errors.New("pgcluster: port already in use")

// readyInterval is the pause between connection attempts while the server
// starts.
const readyInterval = 20 * time.Millisecond

// initdb creates the data directory: trust authentication, superuser
// postgres, UTF8, C locale; no fsync unless durable.
func (c *Cluster) initdb(ctx context.Context) error {
	args := []string{
		"-D", c.DataDir(),
		"-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale",
	}
	if !c.cfg.Durable {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.BinDir, "initdb"), args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = c.acct.procAttr()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgcluster: initdb as user %s: %w\n%s", c.acct.name, err, tail(out))
	}
	return nil
}

// serve starts the postmaster on port and waits until it accepts
// connections. On failure the postmaster is no longer running.
func (c *Cluster) serve(ctx context.Context, port int) error {
	logPath := filepath.Join(c.dir, logFileName)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	defer logFile.Close()
	logStart, _ := logFile.Seek(0, io.SeekEnd)

	//nolint:noctx // the server outlives the start context; Stop ends it
	cmd := exec.Command(filepath.Join(c.cfg.BinDir, "postgres"), c.serverArgs(port)...)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = c.acct.procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgcluster: starting postgres: %w", err)
	}
	c.cmd, c.port, c.exited = cmd, port, make(chan struct{})
	go func(exited chan struct{}) {
		c.waitErr = cmd.Wait()
		close(exited)
	}(c.exited)

	if err := c.waitReady(ctx); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		return startError(err, port, logPath, logStart)
	}
	return nil
}

// startError explains why the server did not start: errPortInUse when the
// port was taken, otherwise err with the tail of the server's log from
// logStart on.
func startError(err error, port int, logPath string, logStart int64) error {
	log := readFrom(logPath, logStart)
	switch {
	case errors.Is(err, errPortInUse):
		return err
	case strings.Contains(log, "Address already in use"):
		return fmt.Errorf("%w: %d", errPortInUse, port)
	}
	return fmt.Errorf("%w\npostgres log (%s):\n%s", err, logPath, tail([]byte(log)))
}

// serverArgs returns the postgres command line: data and socket directories,
// loopback only, port, and every setting as -c name=value in name order.
func (c *Cluster) serverArgs(port int) []string {
	args := []string{
		"-D", c.DataDir(),
		"-k", c.socketDir(),
		"-h", "127.0.0.1",
		"-p", strconv.Itoa(port),
	}
	settings := c.cfg.serverSettings()
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", name+"="+settings[name])
	}
	return args
}

// maxSocketPath is the longest Unix-domain socket path PostgreSQL accepts.
const maxSocketPath = 107

// socketDir returns the directory for the server's Unix-domain socket, or ""
// (no Unix-domain socket; clients use TCP) when the socket's path in the
// cluster directory would be too long, as under a deep TMPDIR.
func (c *Cluster) socketDir() string {
	dir := filepath.Join(c.dir, socketDirName)
	if len(dir)+len("/.s.PGSQL.65535") > maxSocketPath {
		return ""
	}
	return dir
}

// waitReady tries to connect until the server answers, the postmaster exits
// or ctx ends.
func (c *Cluster) waitReady(ctx context.Context) error {
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.ping(attemptCtx)
		cancel()
		if err == nil || errors.Is(err, errPortInUse) {
			return err
		}
		select {
		case <-c.exited:
			return fmt.Errorf("pgcluster: postgres exited during start: %w", c.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: postgres not ready: %w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(readyInterval):
		}
	}
}

// ping connects to the server on c.port and checks that it serves this
// cluster's data directory: another server may have taken the port between
// freePort and the postmaster's bind, and then answers instead.
func (c *Cluster) ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dataDir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir); err != nil {
		return err
	}
	if dataDir != c.DataDir() {
		return fmt.Errorf("%w: %d is served by %s", errPortInUse, c.port, dataDir)
	}
	return nil
}

// readSettings returns the effective values of the reported settings and of
// every setting in Config.Settings.
func (c *Cluster) readSettings(ctx context.Context) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return nil, fmt.Errorf("pgcluster: reading settings: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	names := slices.Concat(reportedSettings, slices.Collect(maps.Keys(c.cfg.Settings)))
	rows, _ := conn.Query(ctx,
		`SELECT name, coalesce(current_setting(name, true), '') FROM unnest($1::text[]) AS name`, names)
	settings := map[string]string{}
	var name, value string
	_, err = pgx.ForEachRow(rows, []any{&name, &value}, func() error {
		settings[name] = value
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgcluster: reading settings: %w", err)
	}
	return settings, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: finding a free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("pgcluster: unexpected listener address %v", l.Addr())
	}
	return addr.Port, nil
}

// readFrom returns the contents of the file at path from offset on, or ""
// when it cannot be read.
func readFrom(path string, offset int64) string {
	data, err := os.ReadFile(path)
	if err != nil || offset > int64(len(data)) {
		return ""
	}
	return string(data[offset:])
}

// tail returns the last lines of out, for error messages.
func tail(out []byte) string {
	const maxLines = 25
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}
