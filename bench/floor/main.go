// Command floor measures the PostgreSQL CPU of the rows the architecture's
// contract makes each step write, written in the fewest, largest statements
// and with nothing else: no template, no hydration of inputs, no Go work to
// speak of. It is the floor under what the engine can cost per step, to set
// beside the engine's own figure (make profile, make bench) and River's cost
// per job (make bench).
//
//	go run ./bench/floor [-tasks 7500] [-batch 10] [-clients 4] [-locks] [-claim-expiry]
//
// See README.md in this directory for what it writes and how to read it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskerops/tasker/internal/pgcluster"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// config holds the command-line flags.
type config struct {
	// tasks is how many diamond tasks (4 steps each) are measured, after
	// warmup unmeasured ones.
	tasks, warmup int
	// batch is how many tasks each statement writes; clients is how many
	// goroutines write batches at once.
	batch, clients int
	v              variant
	timeout        time.Duration
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		err = run(ctx, cfg, os.Stdout)
		cancel()
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// parseFlags parses the command line into a config.
func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.IntVar(&cfg.tasks, "tasks", 7500, "diamond tasks (4 steps each) measured")
	fs.IntVar(&cfg.warmup, "warmup", 200, "unmeasured tasks written first")
	fs.IntVar(&cfg.batch, "batch", 10, "tasks per statement (the engine's batches hold 25 to 100 steps)")
	fs.IntVar(&cfg.clients, "clients", 4, "goroutines writing batches at once")
	fs.BoolVar(&cfg.v.locks, "locks", false, "lock each step's row before the claim's and the outcome's update, as the engine does")
	fs.BoolVar(&cfg.v.claimExpiry, "claim-expiry", false, "set and clear a lease on the engine's partial claim-expiry index")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if cfg.tasks < 1 || cfg.warmup < 0 || cfg.batch < 1 || cfg.clients < 1 {
		return config{}, errors.New("-tasks, -batch and -clients must be positive, -warmup not negative")
	}
	return cfg, nil
}

// measure is what is read before and after the measured part.
type measure struct {
	at         time.Time
	postgres   time.Duration
	walRecords int64
}

// read takes a measure of the server whose postmaster is pid.
func read(ctx context.Context, pool *pgxpool.Pool, postmaster int) (measure, error) {
	m := measure{at: time.Now()}
	if err := pool.QueryRow(ctx, "SELECT wal_records FROM pg_stat_wal").Scan(&m.walRecords); err != nil {
		return measure{}, fmt.Errorf("reading pg_stat_wal: %w", err)
	}
	var err error
	if m.postgres, err = harness.TreeCPU(postmaster); err != nil {
		return measure{}, fmt.Errorf("reading PostgreSQL's CPU: %w", err)
	}
	return m, nil
}

// run starts a durable throwaway PostgreSQL, writes the workload and
// prints the report to out.
func run(ctx context.Context, cfg config, out io.Writer) error {
	cluster, err := pgcluster.Start(ctx, pgcluster.Config{Durable: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer cluster.Stop() //nolint:errcheck // the run's own error, if any, matters more
	pool, err := pgxpool.New(ctx, cluster.URL("postgres"))
	if err != nil {
		return err
	}
	defer pool.Close()
	postmaster, err := harness.Postmaster(ctx, pool)
	if err != nil {
		return err
	}
	var version string
	if err := pool.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return err
	}
	fmt.Fprintf(out, "PostgreSQL %s, durable (fsync and synchronous_commit on); %d cores; load average %s\n",
		version, runtime.NumCPU(), harness.LoadAverage())
	fmt.Fprintf(out, "workload: %d diamond tasks (%d steps) after %d unmeasured, %d tasks per statement, %d clients; locks %t, claim expiry %t\n",
		cfg.tasks, cfg.tasks*stepsPerTask, cfg.warmup, cfg.batch, cfg.clients, cfg.v.locks, cfg.v.claimExpiry)
	if err := setup(ctx, pool, cfg.v); err != nil {
		return err
	}
	if cfg.warmup > 0 {
		if _, err := work(ctx, pool, cfg.v, cfg.warmup, cfg.batch, cfg.clients); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	before, err := read(ctx, pool, postmaster)
	if err != nil {
		return err
	}
	tasks, err := work(ctx, pool, cfg.v, cfg.tasks, cfg.batch, cfg.clients)
	if err != nil {
		return err
	}
	after, err := read(ctx, pool, postmaster)
	if err != nil {
		return err
	}
	report(out, tasks*stepsPerTask, before, after)
	return nil
}

// report prints the measured part's figures, per step.
func report(out io.Writer, steps int, before, after measure) {
	wall := after.at.Sub(before.at)
	cpu := after.postgres - before.postgres
	n := float64(steps)
	fmt.Fprintf(out, "measured: %d steps in %.2f s, %.0f steps/s\n", steps, wall.Seconds(), n/wall.Seconds())
	fmt.Fprintf(out, "PostgreSQL CPU per step: %.3f ms (%.2f s in all, %.2f cores busy on average)\n",
		float64(cpu.Microseconds())/1000/n, cpu.Seconds(), cpu.Seconds()/wall.Seconds())
	fmt.Fprintf(out, "WAL records per step: %.1f\n", float64(after.walRecords-before.walRecords)/n)
}
