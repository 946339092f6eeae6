// Command bench measures tasker as it runs in production and prints each
// figure beside its target. It starts its own durable PostgreSQL (fsync and
// synchronous_commit on), and for each phase migrates a fresh database,
// registers the five sample templates and runs orchestrator and worker
// processes of the tasker binary ($TASKER_BIN, or one it builds). It
// measures
//
//   - latency: linear and mixed-DAG tasks one at a time, end to end from
//     just before the POST to the commit that completes the task, and the
//     dispatch latency of each of their steps;
//   - throughput: diamond tasks submitted together, steps/s and tasks/s from
//     the first submit to the commit of the last completion, once per worker
//     count of -workers, with fresh processes and a fresh database each time;
//   - resources: peak RSS and CPU seconds of every process, read just before
//     it is stopped;
//   - the peer baseline: River burning down pre-inserted no-op jobs on the
//     same PostgreSQL (the separate module bench/river).
//
// It prints a table and writes the same figures, with the machine and the
// PostgreSQL settings, to bench-results.json. It exits 0 when everything ran,
// whether or not the targets are met, and non-zero when something failed.
//
//	TASKER_BIN=bin/tasker go run ./bench [-quick] [-workers 1,2,4]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config holds the command-line flags.
type config struct {
	// linear and mixed are how many linear and mixed-DAG tasks the latency
	// phase runs one at a time; warmup how many of each run first, unmeasured.
	linear, mixed, warmup int
	// poll is how often the latency phase asks the database whether its
	// task is complete.
	poll time.Duration
	// diamond is how many diamond tasks each throughput round submits at
	// once, from submitters goroutines.
	diamond, submitters int
	// workers lists the worker-process counts of the throughput rounds.
	workers []int
	// orchestrators is the number of orchestrator processes of every phase.
	orchestrators int
	// concurrency is each worker's --concurrency.
	concurrency int
	// repeat is how many times the throughput rounds and the River
	// baseline run, one repetition after the other.
	repeat int
	// river runs the River baseline with riverJobs jobs and riverMaxWorkers
	// workers.
	river                      bool
	riverJobs, riverMaxWorkers int
	// out is the JSON file written at the end ("" for none).
	out string
	// timeout bounds the whole run.
	timeout time.Duration
}

// quickScale is what -quick sets, for the flags not given explicitly.
var quickScale = map[string]string{
	"linear": "20", "mixed": "20", "warmup": "3", "diamond": "200", "river-jobs": "5000", "repeat": "1",
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseFlags parses the command line into a config.
func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&cfg.linear, "linear", 200, "linear tasks timed one at a time")
	fs.IntVar(&cfg.mixed, "mixed", 200, "mixed-DAG tasks timed one at a time")
	fs.IntVar(&cfg.warmup, "warmup", 10, "unmeasured tasks of each kind before the timed ones")
	fs.DurationVar(&cfg.poll, "poll", 5*time.Millisecond, "how often the latency phase checks whether its task is complete")
	fs.IntVar(&cfg.diamond, "diamond", 2000, "diamond tasks submitted together in each throughput round")
	fs.IntVar(&cfg.submitters, "submitters", 16, "goroutines submitting the diamond tasks")
	workers := fs.String("workers", "1,2,4", "worker processes of each throughput round, comma-separated")
	fs.IntVar(&cfg.orchestrators, "orchestrators", 1, "orchestrator processes")
	fs.IntVar(&cfg.concurrency, "concurrency", 256, "each worker's --concurrency (claims and outcomes are batched up to the steps in flight, so no-op steps want far more than the default 16)")
	fs.IntVar(&cfg.repeat, "repeat", 3, "repetitions of the throughput rounds and the River baseline, each repetition's rounds and River's run back to back; the figures are medians")
	fs.BoolVar(&cfg.river, "river", true, "run the River baseline")
	fs.IntVar(&cfg.riverJobs, "river-jobs", 50_000, "no-op jobs River burns down")
	fs.IntVar(&cfg.riverMaxWorkers, "river-max-workers", 2_000, "River's MaxWorkers (its own benchmark's setting)")
	fs.StringVar(&cfg.out, "out", "bench-results.json", "JSON results file (empty: none)")
	fs.DurationVar(&cfg.timeout, "timeout", 45*time.Minute, "bound on the whole run")
	quick := fs.Bool("quick", false, "a quick check: "+quickSummary())
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, value := range quickScale {
			if !set[name] {
				if err := fs.Set(name, value); err != nil {
					return config{}, err
				}
			}
		}
	}
	var err error
	if cfg.workers, err = parseCounts(*workers); err != nil {
		return config{}, fmt.Errorf("-workers: %w", err)
	}
	if cfg.linear < 1 || cfg.mixed < 1 || cfg.diamond < 1 || cfg.submitters < 1 || cfg.orchestrators < 1 || cfg.riverJobs < 1 || cfg.repeat < 1 {
		return config{}, errors.New("-linear, -mixed, -diamond, -submitters, -orchestrators, -river-jobs and -repeat must be positive")
	}
	return cfg, nil
}

// quickSummary describes -quick for its help text.
func quickSummary() string {
	parts := make([]string, 0, len(quickScale))
	for _, name := range []string{"linear", "mixed", "warmup", "diamond", "river-jobs", "repeat"} {
		parts = append(parts, "-"+name+" "+quickScale[name])
	}
	return strings.Join(parts, " ")
}

// parseCounts parses a comma-separated list of positive integers.
func parseCounts(list string) ([]int, error) {
	var counts []int
	for field := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", field)
		}
		counts = append(counts, n)
	}
	return counts, nil
}
