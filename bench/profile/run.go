package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/pgcluster"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// database is the database the profiled system runs in.
const database = "tasker"

// serverSettings are the settings the profiler adds to pgcluster's durable
// defaults: pg_stat_statements tracking nested statements too (those of
// foreign-key checks and functions) and planning time, commit timestamps, which the timings
// are computed from, and the timing of WAL flushes.
var serverSettings = map[string]string{
	"shared_preload_libraries":          "pg_stat_statements",
	"pg_stat_statements.track":          "all",
	"pg_stat_statements.track_planning": "on",
	"pg_stat_statements.max":            "10000",
	"track_commit_timestamp":            "on",
	"track_wal_io_timing":               "on",
}

// profiler is one run: its PostgreSQL, the system under test and the
// connection that observes it.
type profiler struct {
	cfg config
	out io.Writer
	// dir holds a tasker binary built for the run, when $TASKER_BIN is unset.
	dir, bin string
	cluster  *pgcluster.Cluster
	url      string
	// postmaster is the PostgreSQL server's process id.
	postmaster int
	// db is the profiler's own connection to the database: the polls,
	// counters and EXPLAINs. Every statement it runs starts with tag.
	db *pgx.Conn
	// sys is the engine and workers running in this process.
	sys *system
	// tracer records the arguments of the statements -explain explains;
	// nil without -explain.
	tracer *tracer
	// profileDir is the temporary directory of the default CPU profile.
	profileDir string
}

// run sets everything up, runs the workload, reports and tears everything
// down.
func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	p := &profiler{cfg: cfg, out: out}
	defer func() { err = errors.Join(err, p.close(ctx, err != nil)) }()
	printMachine(out, harness.ReadMachine())
	if err := p.setUp(ctx); err != nil {
		return err
	}
	res, err := p.measure(ctx)
	if err != nil {
		return err
	}
	printReport(p.out, res)
	printWALKinds(ctx, p.out, p.db, p.cluster, res.start.walLSN, res.end.walLSN, float64(res.m.steps))
	if p.cfg.explain {
		return p.explain(ctx)
	}
	return nil
}

// results are what a run found, for the report.
type results struct {
	cfg        config
	w          workload
	m          *measurement
	start, end counters
	// server and serverEnd are the statistics before the measured part
	// and after the engine and workers stopped.
	server, serverEnd serverStats
	statements        []statement
	// transitions are the latency workload's step timings.
	transitions []transition
	profilePath string
}

// measure runs the warm-up, then the measured part under the CPU profile,
// stops the engine and workers and reads what they did.
func (p *profiler) measure(ctx context.Context) (*results, error) {
	res := &results{cfg: p.cfg, w: p.workload()}
	fmt.Fprintf(p.out, "\n%s\n", res.w.describe())
	if _, err := res.w.run(ctx, p.cfg.warmup); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	// The backends publish their statistics at most once a second and
	// when they exit: new connections leave the warm-up's out of the
	// measured part.
	if err := p.waitGone(ctx, p.sys.reconnect(ctx)); err != nil {
		return nil, err
	}
	var err error
	if res.start, res.server, err = p.begin(ctx); err != nil {
		return nil, err
	}
	path, stopProfile, err := p.startCPUProfile()
	if err != nil {
		return nil, err
	}
	res.profilePath = path
	res.m, err = res.w.run(ctx, res.w.measured())
	stopProfile()
	if err != nil {
		return nil, err
	}
	if res.end, err = p.snapshot(ctx); err != nil {
		return nil, err
	}
	if res.statements, err = p.readStatements(ctx); err != nil {
		return nil, err
	}
	if err := p.sys.stop(ctx); err != nil {
		return nil, fmt.Errorf("stopping the engine and workers: %w", err)
	}
	if err := p.waitGone(ctx, nil); err != nil {
		return nil, err
	}
	if res.serverEnd, err = p.readServerStats(ctx); err != nil {
		return nil, err
	}
	if p.cfg.latency > 0 {
		res.transitions, err = p.readTransitions(ctx, res.m.firstTransition)
	}
	return res, err
}

// setUp builds or finds the binary, starts PostgreSQL, prepares the
// database and starts the engine and workers.
func (p *profiler) setUp(ctx context.Context) error {
	var err error
	if p.dir, err = os.MkdirTemp("", "tasker-profile-build-"); err != nil {
		return err
	}
	if p.bin, err = harness.Build(ctx, p.dir); err != nil {
		return err
	}
	if err := p.startPostgres(ctx); err != nil {
		return err
	}
	if err := harness.Migrate(ctx, p.bin, p.url); err != nil {
		return err
	}
	if err := harness.ApplySamples(ctx, p.bin, p.url); err != nil {
		return err
	}
	if p.db, err = pgx.Connect(ctx, p.url); err != nil {
		return err
	}
	if _, err := p.db.Exec(ctx, tag+"CREATE EXTENSION pg_stat_statements"); err != nil {
		return err
	}
	if err := p.runSetupSQL(ctx); err != nil {
		return err
	}
	if p.cfg.explain {
		p.tracer = newTracer(explained(p.namespace()))
	}
	p.sys, err = startSystem(ctx, p.url, p.cfg, p.tracer)
	return err
}

// runSetupSQL runs the file of -setup-sql, if any, in one simple-protocol
// round trip (several statements may follow each other).
func (p *profiler) runSetupSQL(ctx context.Context) error {
	if p.cfg.setupSQL == "" {
		return nil
	}
	if _, err := p.db.Exec(ctx, p.cfg.setupText, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("-setup-sql %s: %w", p.cfg.setupSQL, err)
	}
	fmt.Fprintf(p.out, "setup SQL: %s\n", p.cfg.setupSQL)
	return nil
}

// startPostgres starts the durable cluster, creates the database, finds
// the postmaster and prints the server's settings.
func (p *profiler) startPostgres(ctx context.Context) error {
	cluster, err := pgcluster.Start(ctx, pgcluster.Config{
		Durable: true, Settings: serverSettings, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	p.cluster = cluster
	p.url = cluster.URL(database)
	admin, err := pgx.Connect(ctx, cluster.URL("postgres"))
	if err != nil {
		return err
	}
	defer func() { _ = admin.Close(context.WithoutCancel(ctx)) }()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+database); err != nil {
		return err
	}
	if p.postmaster, err = harness.Postmaster(ctx, admin); err != nil {
		return err
	}
	return printPostgres(ctx, p.out, admin, cluster.Dir())
}

// startCPUProfile starts the Go CPU profile; the function it returns stops
// it.
func (p *profiler) startCPUProfile() (string, func(), error) {
	path := p.cfg.cpuProfile
	if path == "" {
		dir, err := os.MkdirTemp("", "tasker-profile-")
		if err != nil {
			return "", nil, err
		}
		p.profileDir = dir
		path = filepath.Join(dir, "profile.cpu")
	}
	f, err := os.Create(path)
	if err != nil {
		return "", nil, err
	}
	// The allocation profile counts from the process's start: one written
	// now and one at the end give the measured part as their difference
	// (pprof -base).
	if err := writeAllocs(allocsPath(path, "base")); err != nil {
		_ = f.Close()
		return "", nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return "", nil, err
	}
	return path, func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		if err := writeAllocs(allocsPath(path, "")); err != nil {
			fmt.Fprintln(os.Stderr, "profile: writing the allocation profile:", err)
		}
	}, nil
}

// allocsPath names an allocation profile written beside the CPU profile
// at cpuPath: profile.allocs, or profile.allocs.base for the one taken
// before the measured part.
func allocsPath(cpuPath, suffix string) string {
	path := strings.TrimSuffix(cpuPath, filepath.Ext(cpuPath)) + ".allocs"
	if suffix != "" {
		path += "." + suffix
	}
	return path
}

// writeAllocs writes the process's allocation profile (every sampled
// allocation since it started) to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// close stops whatever still runs and removes the build directory, and
// after a failure the default CPU profile; it is safe at any point of the
// run.
func (p *profiler) close(ctx context.Context, failed bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var errs []error
	if p.sys != nil {
		errs = append(errs, p.sys.stop(ctx))
	}
	if p.db != nil {
		errs = append(errs, p.db.Close(ctx))
	}
	if p.cluster != nil {
		errs = append(errs, p.cluster.Stop())
	}
	if p.dir != "" {
		errs = append(errs, os.RemoveAll(p.dir))
	}
	if failed && p.profileDir != "" {
		errs = append(errs, os.RemoveAll(p.profileDir))
	}
	return errors.Join(errs...)
}
