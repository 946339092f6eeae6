package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Names inside a cluster directory.
const (
	dataDirName   = "data"
	socketDirName = "socket"
	logFileName   = "postgres.log"
	ownerFileName = "owner.pid"
)

// portAttempts is how many free ports Start tries when Config.Port is 0 and
// another process takes the chosen port before the server binds it.
const portAttempts = 5

// Cluster is a running throwaway PostgreSQL server. Its superuser is
// "postgres", trusted without a password on loopback. Stop it when done.
type Cluster struct {
	cfg  Config
	acct account
	// dir is the cluster directory: data, socket, log and owner file.
	dir  string
	port int

	// cmd is the postmaster; exited is closed once it has exited, after
	// which waitErr holds the result of cmd.Wait.
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error

	// settings are the effective key settings, read once the server is up.
	settings map[string]string

	stopOnce sync.Once
	stopErr  error
}

// Start creates a cluster in a fresh directory under cfg.Dir, starts its
// server and returns once the server accepts connections. Before that it
// removes the directories of clusters whose owning process is gone. On error
// nothing is left running and the directory is removed.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg, acct, err := resolve(cfg) //nolint:contextcheck // binary discovery has its own short timeout
	if err != nil {
		return nil, err
	}
	sweep(cfg.Dir, cfg.Logger)

	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	c := &Cluster{cfg: cfg, acct: acct}
	if err := c.start(ctx); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	cfg.Logger.Info("postgres started", "dir", c.dir, "port", c.port,
		"version", c.settings["server_version"])
	return c, nil
}

// resolve applies cfg's defaults, finds the server binaries, makes Dir
// absolute and picks the account that runs the server.
func resolve(cfg Config) (Config, account, error) {
	cfg = cfg.withDefaults()
	if cfg.BinDir == "" {
		dir, err := FindBinDir()
		if err != nil {
			return cfg, account{}, err
		}
		cfg.BinDir = dir
	} else if err := checkBinDir(cfg.BinDir); err != nil {
		return cfg, account{}, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return cfg, account{}, fmt.Errorf("pgcluster: %w", err)
	}
	cfg.Dir = dir
	acct, err := lookupAccount(cfg.RunAs)
	if err != nil {
		return cfg, account{}, err
	}
	return cfg, acct, acct.checkReach(cfg.Dir)
}

// start prepares the directory, runs initdb and starts the server.
func (c *Cluster) start(ctx context.Context) error {
	if err := c.makeDir(); err != nil {
		return err
	}
	began := time.Now()
	if err := c.initdb(ctx); err != nil {
		return err
	}
	c.cfg.Logger.Debug("initdb done", "dir", c.dir, "took", time.Since(began))
	if err := c.listen(ctx); err != nil {
		return err
	}
	settings, err := c.readSettings(ctx)
	if err != nil {
		return err
	}
	c.settings = settings
	return nil
}

// makeDir creates the cluster directory with its owner file and socket
// directory, owned by the account that runs the server.
func (c *Cluster) makeDir() error {
	dir, err := os.MkdirTemp(c.cfg.Dir, dirPrefix+"*")
	if err != nil {
		return fmt.Errorf("pgcluster: creating cluster directory: %w", err)
	}
	c.dir = dir
	if err := writeOwner(dir); err != nil {
		return err
	}
	socketDir := filepath.Join(dir, socketDirName)
	if err := os.Mkdir(socketDir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return c.acct.own(dir, socketDir)
}

// listen starts the server on Config.Port, or on free ports until one is not
// taken by another process in the meantime.
func (c *Cluster) listen(ctx context.Context) error {
	attempts := 1
	if c.cfg.Port == 0 {
		attempts = portAttempts
	}
	for attempt := 1; ; attempt++ {
		port := c.cfg.Port
		if port == 0 {
			var err error
			if port, err = freePort(ctx); err != nil {
				return err
			}
		}
		err := c.serve(ctx, port)
		if !errors.Is(err, errPortInUse) || attempt == attempts {
			return err
		}
		c.cfg.Logger.Debug("port taken, retrying", "port", port)
	}
}

// URL returns the connection URL of database on this cluster, as the
// postgres superuser over TCP on loopback.
func (c *Cluster) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     fmt.Sprintf("127.0.0.1:%d", c.port),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on, on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Dir returns the cluster directory (data, socket, log); Stop removes it.
func (c *Cluster) Dir() string { return c.dir }

// DataDir returns the server's data directory, inside Dir.
func (c *Cluster) DataDir() string { return filepath.Join(c.dir, dataDirName) }

// BinDir returns the directory of the PostgreSQL binaries the server runs
// from (Config.BinDir, or the one FindBinDir found).
func (c *Cluster) BinDir() string { return c.cfg.BinDir }

// Version returns the server's version, e.g. "15.14 (Debian 15.14-0+deb12u1)".
func (c *Cluster) Version() string { return c.settings["server_version"] }

// Settings returns the effective values of the key settings (server_version,
// fsync, synchronous_commit, full_page_writes, max_connections,
// shared_buffers) and of every setting in Config.Settings, as SHOW prints
// them. The map is a copy.
func (c *Cluster) Settings() map[string]string { return maps.Clone(c.settings) }

// Stop shuts the server down (fast shutdown; killed after
// Config.StopTimeout) and removes the cluster directory. Calling it again
// returns the first call's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		err := c.shutdown()
		if c.dir != "" {
			if rmErr := os.RemoveAll(c.dir); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("pgcluster: removing %s: %w", c.dir, rmErr))
			}
		}
		c.stopErr = err
	})
	return c.stopErr
}

// shutdown asks the postmaster for a fast shutdown and waits for it to exit,
// killing its whole process group when it takes longer than StopTimeout.
func (c *Cluster) shutdown() error {
	if c.cmd == nil || c.hasExited() {
		return nil
	}
	began := time.Now()
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	timer := time.NewTimer(c.cfg.StopTimeout)
	defer timer.Stop()
	select {
	case <-c.exited:
		c.cfg.Logger.Debug("postgres stopped", "dir", c.dir, "took", time.Since(began))
		return nil
	case <-timer.C:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.exited
	return fmt.Errorf("pgcluster: server did not shut down within %s and was killed", c.cfg.StopTimeout)
}

// hasExited reports whether the postmaster has exited.
func (c *Cluster) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}
