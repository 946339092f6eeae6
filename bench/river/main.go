// Command river is the peer baseline of the tasker benchmark (see ../):
// River (github.com/riverqueue/river) burning down pre-inserted no-op jobs
// on a PostgreSQL database. It applies River's migrations, inserts the jobs
// (not timed), starts a River client with a worker that does nothing, and
// times it from Start to the completion event of the last job, as River's
// own `river bench` burn-down mode does. It prints one JSON object on stdout.
// On stderr, two marker lines (markBurnDownStart, markBurnDownEnd) enclose
// the burn-down, so that the benchmark can read PostgreSQL's CPU time over
// it alone.
//
// It is a module of its own so that the tasker module never depends on
// River. The benchmark builds and runs it; by hand:
//
//	cd bench/river && GOWORK=off go run . -database-url postgres://...
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// config holds the command-line flags.
type config struct {
	// databaseURL is the database River migrates and uses; it should be
	// empty of River jobs.
	databaseURL string
	// jobs is how many no-op jobs are inserted and then worked.
	jobs int
	// maxWorkers is the default queue's MaxWorkers: jobs worked at once.
	maxWorkers int
	// fetchCooldown and fetchPollInterval are the client's settings of the
	// same names.
	fetchCooldown, fetchPollInterval time.Duration
	// poolMaxConns is the pgx pool's size; 0 keeps pgxpool's default.
	poolMaxConns int
	// timeout bounds the whole run.
	timeout time.Duration
}

// result is what the program prints.
type result struct {
	RiverVersion string `json:"river_version"`
	Jobs         int    `json:"jobs"`
	// Seconds is the time from client Start to the last completion event.
	Seconds       float64 `json:"seconds"`
	JobsPerSecond float64 `json:"jobs_per_second"`
	// InsertSeconds is the time the (untimed) bulk insert took.
	InsertSeconds       float64 `json:"insert_seconds"`
	MaxWorkers          int     `json:"max_workers"`
	FetchCooldownMs     float64 `json:"fetch_cooldown_ms"`
	FetchPollIntervalMs float64 `json:"fetch_poll_interval_ms"`
	PoolMaxConns        int32   `json:"pool_max_conns"`
	// BurnDownCPUSeconds is this process's CPU time (user and system)
	// during the burn-down.
	BurnDownCPUSeconds float64 `json:"burn_down_cpu_seconds"`
}

// The marker lines written on stderr just before the burn-down starts and
// just after it ended.
const (
	markBurnDownStart = "river bench: burn-down starts"
	markBurnDownEnd   = "river bench: burn-down ended"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.databaseURL, "database-url", "", "PostgreSQL URL of the database to use (required)")
	flag.IntVar(&cfg.jobs, "jobs", 50_000, "no-op jobs to insert and work")
	// River's own benchmark (cmd/river/riverbench) uses 2,000 workers, a
	// 2 ms fetch cooldown and a 20 ms fetch poll interval for throughput.
	flag.IntVar(&cfg.maxWorkers, "max-workers", 2_000, "MaxWorkers of the default queue")
	flag.DurationVar(&cfg.fetchCooldown, "fetch-cooldown", 2*time.Millisecond, "client FetchCooldown")
	flag.DurationVar(&cfg.fetchPollInterval, "fetch-poll-interval", 20*time.Millisecond, "client FetchPollInterval")
	flag.IntVar(&cfg.poolMaxConns, "pool-max-conns", 0, "pgx pool size (0: pgxpool's default, max(4, CPUs))")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	res, err := run(ctx, cfg)
	stop()
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "river bench:", err)
		os.Exit(1)
	}
}

// run migrates, inserts the jobs and times their burn-down.
func run(ctx context.Context, cfg config) (result, error) {
	if cfg.databaseURL == "" || cfg.jobs <= 0 || cfg.maxWorkers <= 0 {
		return result{}, errors.New("-database-url, a positive -jobs and a positive -max-workers are required")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return result{}, err
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return result{}, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return result{}, fmt.Errorf("migrating: %w", err)
	}
	client, err := newClient(driver, cfg)
	if err != nil {
		return result{}, err
	}
	inserted := time.Now()
	if err := insertJobs(ctx, client, cfg.jobs); err != nil {
		return result{}, err
	}
	insertTook := time.Since(inserted)
	// Statistics for the planner and a checkpoint, so that the timed run
	// starts from the same clean state as the tasker measurements.
	if _, err := pool.Exec(ctx, "ANALYZE river_job; CHECKPOINT"); err != nil {
		return result{}, err
	}
	fmt.Fprintln(os.Stderr, markBurnDownStart)
	cpuBefore := selfCPU()
	took, err := burnDown(ctx, client, cfg.jobs)
	cpu := selfCPU() - cpuBefore
	fmt.Fprintln(os.Stderr, markBurnDownEnd)
	if err != nil {
		return result{}, err
	}
	if err := checkCompleted(ctx, pool, cfg.jobs); err != nil {
		return result{}, err
	}
	return result{
		RiverVersion: riverVersion(), Jobs: cfg.jobs,
		Seconds: took.Seconds(), JobsPerSecond: float64(cfg.jobs) / took.Seconds(),
		InsertSeconds: insertTook.Seconds(), MaxWorkers: cfg.maxWorkers,
		FetchCooldownMs:     float64(cfg.fetchCooldown.Microseconds()) / 1000,
		FetchPollIntervalMs: float64(cfg.fetchPollInterval.Microseconds()) / 1000,
		PoolMaxConns:        pool.Config().MaxConns,
		BurnDownCPUSeconds:  cpu.Seconds(),
	}, nil
}

// selfCPU returns this process's CPU time so far, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// openPool connects a pgx pool of the configured size.
func openPool(ctx context.Context, cfg config) (*pgxpool.Pool, error) {
	poolCfg, err := pgxpool.ParseConfig(cfg.databaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.poolMaxConns > 0 {
		poolCfg.MaxConns = int32(min(cfg.poolMaxConns, 1<<16))
	}
	return pgxpool.NewWithConfig(ctx, poolCfg)
}

// riverVersion returns the version of the River module this program was
// built with.
func riverVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/riverqueue/river" {
			return dep.Version
		}
	}
	return "unknown"
}
