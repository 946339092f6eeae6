package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/taskerops/tasker/internal/kubeenv"
	"github.com/taskerops/tasker/internal/pgcluster"
	"github.com/taskerops/tasker/orchestration/api"
)

// devSystem is what `tasker dev` runs. Its context ends when the command's
// does, or, with a cause naming it, when a component stops on its own.
type devSystem struct {
	ctx    context.Context //nolint:containedctx // the system's lifetime: components run under it, and its cause names one that stopped early
	cancel context.CancelCauseFunc
	out    io.Writer
	// logs receives the components' logs; logFile is the file behind it,
	// unless --verbose sent them to stderr.
	logs    io.Writer
	logFile *os.File

	workDir    string
	postgres   *pgcluster.Cluster
	kube       *kubeenv.ControlPlane
	dbURL      string
	apiURL     string
	token      string
	tokenFile  string
	kubeconfig string
	// workerCommands are the worker command lines run for the WorkerPools,
	// for the --keep summary.
	workerCommands []string

	// components counts the components running in goroutines; stopping
	// flags that their ending is expected.
	components sync.WaitGroup
	stopping   chan struct{}
}

func newDevSystem(ctx context.Context, cancel context.CancelCauseFunc, out io.Writer) *devSystem {
	return &devSystem{ctx: ctx, cancel: cancel, out: out, logs: io.Discard, stopping: make(chan struct{})}
}

// sayf prints a progress line after the time it took since begin.
func (s *devSystem) sayf(begin time.Time, format string, args ...any) {
	fmt.Fprintf(s.out, "%8s  %s\n", formatDuration(time.Since(begin)), fmt.Sprintf(format, args...))
}

// start starts PostgreSQL, the control plane, the manager and the
// orchestrator.
func (s *devSystem) start(ctx context.Context, o *devOptions, stderr io.Writer, crds string) error {
	var err error
	if s.workDir, err = os.MkdirTemp("", "tasker-dev-"); err != nil {
		return err
	}
	if o.verbose {
		s.logs = stderr
	} else {
		if s.logFile, err = os.Create(filepath.Join(s.workDir, "tasker.log")); err != nil {
			return err
		}
		s.logs = s.logFile
		fmt.Fprintf(s.out, "work directory %s (logs in tasker.log)\n", s.workDir)
	}
	logger := slog.New(slog.NewTextHandler(s.logs, nil))

	begin := time.Now()
	s.postgres, err = pgcluster.Start(ctx, pgcluster.Config{Logger: logger})
	if err != nil {
		return fmt.Errorf("starting PostgreSQL: %w", err)
	}
	s.dbURL = s.postgres.URL("postgres")
	s.sayf(begin, "PostgreSQL %s on 127.0.0.1:%d", s.postgres.Version(), s.postgres.Port())

	begin = time.Now()
	if o.assets == "" {
		fmt.Fprintln(s.out, "finding the control plane binaries (hack/envtest.sh builds them the first time: minutes)")
	}
	s.kube, err = kubeenv.Start(ctx, kubeenv.Options{
		Assets: o.assets, CRDDirectories: []string{crds}, GarbageCollector: true, Output: s.logs,
	})
	if err != nil {
		return err
	}
	s.kubeconfig = filepath.Join(s.workDir, "kubeconfig")
	if err := s.kube.WriteKubeconfig(s.kubeconfig, "tasker-dev-admin", "system:masters"); err != nil {
		return err
	}
	s.sayf(begin, "Kubernetes API server at %s", s.kube.Config.Host)

	begin = time.Now()
	pool, err := pgxpool.New(ctx, s.dbURL)
	if err != nil {
		return err
	}
	err = migrateAtStart(ctx, logger, pool)
	pool.Close()
	if err != nil {
		return err
	}
	s.sayf(begin, "database migrated")
	return s.startComponents(ctx, o)
}

// startComponents starts the manager and the orchestrator in this process
// and waits for the orchestrator's API to be ready.
func (s *devSystem) startComponents(ctx context.Context, o *devOptions) error {
	begin := time.Now()
	manager := &managerOptions{
		db:             databaseOptions{url: s.dbURL},
		logs:           logOptions{level: "info", format: "text"},
		metricsListen:  "0",
		healthListen:   "0",
		leaderElect:    true,
		leaderElectNS:  "default",
		workerImage:    "ghcr.io/taskerops/tasker:dev",
		resync:         10 * time.Minute,
		poll:           2 * time.Second,
		skipMigrations: true,
		restConfig:     s.kube.Config,
	}
	s.goRun("the manager", func(ctx context.Context) error { return manager.run(ctx, s.logs) })

	listen, err := freeAddress(ctx, o.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	s.token = rand.Text()
	s.tokenFile = filepath.Join(s.workDir, "api-token")
	if err := os.WriteFile(s.tokenFile, []byte(s.token+"\n"), 0o600); err != nil {
		return err
	}
	orchestrator := newOrchestratorCommand() //nolint:contextcheck // its RunE takes the context goCommand gives it
	s.goCommand("the orchestrator", orchestrator, "--database-url="+s.dbURL, "--listen="+listen,
		"--api-token-file="+s.tokenFile, "--skip-migrations", "--process-id=orchestrator@tasker-dev")
	s.apiURL = "http://" + listen
	client := api.NewClient(s.apiURL, s.token, nil)
	if err := waitFor(ctx, func() error { return client.Ready(ctx) }); err != nil {
		return fmt.Errorf("the orchestrator's API at %s did not get ready: %w", s.apiURL, err)
	}
	s.sayf(begin, "manager and orchestrator running; REST API at %s", s.apiURL)
	return nil
}

// goCommand runs a tasker subcommand in a goroutine, with its output and
// logs going to the log.
func (s *devSystem) goCommand(name string, cmd *cobra.Command, args ...string) {
	cmd.SetArgs(args)
	cmd.SetOut(s.logs)
	cmd.SetErr(s.logs)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	s.goRun(name, cmd.ExecuteContext)
}

// goRun runs a component until the system stops. A component that stops
// before then (with an error or not) stops the whole system, with a cause
// that names it.
func (s *devSystem) goRun(name string, run func(context.Context) error) {
	s.components.Go(func() {
		err := run(s.ctx)
		select {
		case <-s.stopping:
			if err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(s.logs, "tasker dev: %s stopped: %v\n", name, err)
			}
		default:
			if err == nil {
				err = errors.New("it exited")
			}
			s.cancel(fmt.Errorf("%s stopped: %w", name, err))
		}
	})
}

// explain returns err, or, when the system stopped because a component did
// or the time ran out, that reason (with the log file to look at).
func (s *devSystem) explain(ctx context.Context, doing string, err error) error {
	switch cause := context.Cause(ctx); {
	case cause == nil || errors.Is(cause, context.Canceled):
	case errors.Is(cause, context.DeadlineExceeded):
		err = fmt.Errorf("%w (--timeout)", err)
	default:
		err = cause // a component stopped; that is what went wrong
	}
	err = fmt.Errorf("%s: %w", doing, err)
	if s.logFile != nil {
		err = fmt.Errorf("%w\nthe components' logs: %s (kept)", err, s.logFile.Name())
		s.workDir = "" // keep the logs for the user
	}
	return err
}

// printKeep tells the user how to reach the system that stays up: the
// exports let kubectl and `tasker task` find it without flags.
func (s *devSystem) printKeep() {
	fmt.Fprintf(s.out, `
Tasker is running; Ctrl-C stops it and removes its files. In another shell:

  export KUBECONFIG=%s
  export TASKER_SERVER=%s TASKER_TOKEN_FILE=%s
  export TASKER_DATABASE_URL=%s

  kubectl get tasktemplates,workerpools
  tasker task create linear_workflow mathematical_sequence --context '{"even_number": 8}' --watch
  tasker task list

The workers stand in for WorkerPool pods: %s
`, s.kubeconfig, s.apiURL, s.tokenFile, s.dbURL, strings.Join(s.workerCommands, "; "))
}

// stop stops the components, the control plane and PostgreSQL, and removes
// the work directory (unless explain kept it for its logs).
func (s *devSystem) stop() {
	close(s.stopping)
	s.cancel(context.Canceled)
	s.components.Wait()
	if s.kube != nil {
		if err := s.kube.Stop(); err != nil {
			fmt.Fprintf(s.out, "tasker dev: %v\n", err)
		}
	}
	if s.postgres != nil {
		if err := s.postgres.Stop(); err != nil {
			fmt.Fprintf(s.out, "tasker dev: stopping PostgreSQL: %v\n", err)
		}
	}
	if s.logFile != nil {
		_ = s.logFile.Close()
	}
	if s.workDir != "" {
		_ = os.RemoveAll(s.workDir)
	}
}

// freeAddress returns addr, with a free port chosen when its port is 0.
func freeAddress(ctx context.Context, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return addr, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return "", fmt.Errorf("%s is not a TCP address", addr)
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port)), nil
}

// finalError ends a waitFor at once: its error is final.
type finalError struct{ err error }

func (e finalError) Error() string { return e.err.Error() }

// waitInterval is how often waitFor checks.
const waitInterval = 50 * time.Millisecond

// waitFor calls check every waitInterval until it succeeds or ctx ends; then
// it returns check's last error.
func waitFor(ctx context.Context, check func() error) error {
	ticker := time.NewTicker(waitInterval)
	defer ticker.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		if final, ok := errors.AsType[finalError](err); ok {
			return final.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", context.Cause(ctx), err)
		case <-ticker.C:
		}
	}
}
