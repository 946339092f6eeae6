// Command profile runs the orchestration engine and workers in this one
// process against a durable, throwaway PostgreSQL with pg_stat_statements,
// pushes a workload through them and reports where the time goes: a Go CPU
// profile of the engine and workers, the statements PostgreSQL ran, how the
// tables were read and written, the WAL written and the CPU both sides used,
// per step. It is a profiling aid for working on the engine's hot path; the
// benchmark (../) measures the real processes against the targets.
//
//	TASKER_BIN=bin/tasker go run ./bench/profile [-tasks 1000] [-latency 40] [-explain]
//
// See README.md in this directory for what each part of the report means.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/taskerops/tasker/internal/gctune"
)

// config holds the command-line flags.
type config struct {
	// tasks is how many diamond tasks the throughput workload submits at
	// once, from submitters goroutines.
	tasks, submitters int
	// latency, when positive, replaces the throughput workload: that many
	// linear tasks, one at a time.
	latency int
	// warmup is how many tasks of the workload run, unmeasured, before it.
	warmup int
	// workers is the number of in-process workers, each of concurrency.
	workers, concurrency int
	// cpuProfile is the CPU profile's path ("" for profile.cpu in a new
	// temporary directory).
	cpuProfile string
	// top is how many statements the report lists.
	top int
	// explain runs EXPLAIN ANALYZE of the engine's hottest statements.
	explain bool
	// timeout bounds the whole run.
	timeout time.Duration
	// setupSQL names a file of SQL run on the database after it is
	// migrated and before the engine starts ("" for none); setupText is
	// its content, read when the flags are parsed.
	setupSQL, setupText string
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(2)
	}
	gctune.Apply() // as the tasker command runs the orchestrator and the worker
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted {
		fmt.Fprintln(os.Stderr, "profile: interrupted")
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

// parseFlags parses the command line into a config.
func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.IntVar(&cfg.tasks, "tasks", 1000, "diamond tasks submitted together (the throughput workload)")
	fs.IntVar(&cfg.submitters, "submitters", 16, "goroutines submitting the diamond tasks")
	fs.IntVar(&cfg.latency, "latency", 0, "instead of the diamond tasks, run this many linear tasks one at a time and time their steps")
	fs.IntVar(&cfg.warmup, "warmup", 0, "unmeasured tasks before the measured ones (default: 20 diamond, or 5 linear with -latency)")
	fs.IntVar(&cfg.workers, "workers", 1, "in-process workers")
	fs.IntVar(&cfg.concurrency, "concurrency", 256, "each worker's concurrency (steps in flight; as make bench runs them)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "Go CPU profile of the measured part (default: profile.cpu in a new temporary directory)")
	fs.IntVar(&cfg.top, "top", 25, "statements listed, by total execution time")
	fs.BoolVar(&cfg.explain, "explain", false, "EXPLAIN (ANALYZE, BUFFERS) the engine's hottest statements, custom and generic plans")
	fs.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "bound on the whole run")
	fs.StringVar(&cfg.setupSQL, "setup-sql", "", "file of SQL run after migrating, before the engine starts (to try a schema change: an index dropped, a setting)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if cfg.tasks < 1 || cfg.submitters < 1 || cfg.workers < 1 || cfg.concurrency < 1 || cfg.top < 0 || cfg.latency < 0 || cfg.warmup < 0 {
		return config{}, errors.New("-tasks, -submitters, -workers and -concurrency must be positive; -top, -latency and -warmup not negative")
	}
	if cfg.setupSQL != "" {
		text, err := os.ReadFile(cfg.setupSQL)
		if err != nil {
			return config{}, fmt.Errorf("-setup-sql: %w", err)
		}
		cfg.setupText = string(text)
	}
	if !isSet(fs, "warmup") {
		cfg.warmup = 20
		if cfg.latency > 0 {
			cfg.warmup = 5
		}
	}
	return cfg, nil
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
