// Command bench measures the whole system as it runs in production: a
// durable PostgreSQL (fsync and synchronous_commit on), `tasker migrate`,
// the five sample templates, and orchestrator and worker processes of the
// tasker binary built from this module. It reports
//
//   - the end-to-end latency of one linear task (POST, then GET every 2 ms
//     until it is complete), over sequential runs: min, p50, p95, max;
//   - the throughput of many diamond tasks submitted at once: wall time
//     from the first submit to the last completion, tasks/s and steps/s.
//
// Run it from the module: go run ./test/e2e/bench [-workers 2]
//
// It is a benchmark program, not a test: the figures depend on the machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/pgcluster"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// config holds the command-line flags.
type config struct {
	// orchestrators and workers are the processes to start.
	orchestrators, workers int
	// concurrency is each worker's --concurrency.
	concurrency int
	// runs is the number of sequential linear tasks measured.
	runs int
	// tasks is the number of diamond tasks submitted at once.
	tasks int
	// submitters is how many goroutines submit them.
	submitters int
	// timeout bounds the whole run.
	timeout time.Duration
}

func main() {
	var cfg config
	flag.IntVar(&cfg.orchestrators, "orchestrators", 1, "orchestrator processes")
	flag.IntVar(&cfg.workers, "workers", 1, "worker processes")
	flag.IntVar(&cfg.concurrency, "concurrency", 16, "steps in flight per worker (--concurrency)")
	flag.IntVar(&cfg.runs, "runs", 30, "sequential linear tasks to time")
	flag.IntVar(&cfg.tasks, "tasks", 200, "diamond tasks submitted at once")
	flag.IntVar(&cfg.submitters, "submitters", 16, "goroutines submitting the diamond tasks")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run sets everything up, measures, prints the report and tears
// everything down, whatever happened.
func run(ctx context.Context, cfg config) (err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "tasker-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: process logs kept in %s\n", dir)
			return
		}
		err = os.RemoveAll(dir)
	}()

	cluster, err := pgcluster.Start(ctx, pgcluster.Config{Durable: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cluster.Stop()) }()
	printServer(cluster)

	sys, err := startSystem(ctx, cfg, cluster, dir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, sys.Kill()) }()

	latency, err := measureLatency(ctx, sys, cfg.runs)
	if err != nil {
		return fmt.Errorf("linear latency: %w", err)
	}
	throughput, err := measureThroughput(ctx, sys, cluster.URL(benchDatabase), cfg)
	if err != nil {
		return fmt.Errorf("diamond throughput: %w", err)
	}
	printReport(cfg, latency, throughput)
	if err := sys.Stop(); err != nil {
		return fmt.Errorf("stopping the processes: %w", err)
	}
	fmt.Fprintln(os.Stdout, "\nall processes exited 0 on SIGTERM")
	return nil
}

// benchDatabase is the database the benchmark creates on its cluster.
const benchDatabase = "tasker_bench"

// printServer prints the server's version and durability settings.
func printServer(cluster *pgcluster.Cluster) {
	s := cluster.Settings()
	fmt.Fprintf(os.Stdout, "PostgreSQL %s in %s: fsync=%s synchronous_commit=%s full_page_writes=%s shared_buffers=%s\n",
		cluster.Version(), cluster.Dir(), s["fsync"], s["synchronous_commit"], s["full_page_writes"], s["shared_buffers"])
}

// startSystem creates the database, builds the binary, migrates, registers
// the samples and starts the processes.
func startSystem(ctx context.Context, cfg config, cluster *pgcluster.Cluster, dir string) (*harness.System, error) {
	if err := createDatabase(ctx, cluster.URL("postgres"), benchDatabase); err != nil {
		return nil, err
	}
	url := cluster.URL(benchDatabase)
	bin, err := harness.Build(ctx, dir)
	if err != nil {
		return nil, err
	}
	if err := harness.Migrate(ctx, bin, url); err != nil {
		return nil, err
	}
	if err := harness.ApplySamples(ctx, bin, url); err != nil {
		return nil, err
	}
	sys, err := harness.Start(ctx, harness.Options{
		Binary: bin, DatabaseURL: url, Dir: dir,
		Orchestrators: cfg.orchestrators, Workers: cfg.workers, IDPrefix: "bench-",
		WorkerArgs: []string{"--concurrency", strconv.Itoa(cfg.concurrency)},
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stdout, "%d orchestrator(s), %d worker(s) with --concurrency %d\n", cfg.orchestrators, cfg.workers, cfg.concurrency)
	return sys, nil
}

// createDatabase creates a database through the admin URL.
func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}
