package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/pgcluster"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// bench is one run of the benchmark: its environment and what it found.
type bench struct {
	cfg config
	out io.Writer
	// dir holds the binaries and the processes' logs.
	dir string
	// bin is the tasker binary, riverBin the River baseline's.
	bin, riverBin string
	cluster       *pgcluster.Cluster
	// admin is a connection to the cluster's postgres database, for
	// creating and dropping databases, checkpoints and server counters.
	admin *pgx.Conn
	// postmaster is the PostgreSQL server's process id.
	postmaster int
	res        results
}

// serverSettings are the settings the benchmark adds to pgcluster's
// durable defaults: commit timestamps, which the latency and throughput
// figures are computed from, and the timing of WAL flushes, which the
// report shows.
var serverSettings = map[string]string{
	"track_commit_timestamp": "on",
	"track_wal_io_timing":    "on",
}

// run sets everything up, measures, reports and tears everything down.
func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "tasker-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: binaries and process logs kept in %s\n", dir)
			return
		}
		err = os.RemoveAll(dir)
	}()
	b := &bench{cfg: cfg, out: out, dir: dir}
	b.res.StartedAt = time.Now().UTC()
	b.res.Config = cfg.record()
	b.res.Machine = harness.ReadMachine()
	printMachine(out, b.res.Machine)
	if err := b.build(ctx); err != nil {
		return err
	}
	if err := b.startPostgres(ctx); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.stopPostgres(ctx)) }()
	if err := b.measure(ctx); err != nil {
		return err
	}
	b.res.Seconds = time.Since(b.res.StartedAt).Seconds()
	b.res.Figures = evaluate(&b.res)
	b.res.Method = method(&b.res)
	printReport(out, &b.res)
	if cfg.out != "" {
		return writeJSON(cfg.out, &b.res)
	}
	return nil
}

// build finds or builds the tasker binary and builds the River baseline,
// before anything is measured (a build would compete for the CPU).
func (b *bench) build(ctx context.Context) error {
	var err error
	if b.bin, err = harness.Build(ctx, b.dir); err != nil {
		return err
	}
	if b.cfg.river {
		if b.riverBin, err = buildRiver(ctx, b.dir); err != nil {
			return err
		}
	}
	return nil
}

// startPostgres starts the durable cluster, connects to it and reads its
// settings.
func (b *bench) startPostgres(ctx context.Context) error {
	cluster, err := pgcluster.Start(ctx, pgcluster.Config{
		Durable: true, Settings: serverSettings, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	b.cluster = cluster
	if b.admin, err = pgx.Connect(ctx, cluster.URL("postgres")); err != nil {
		return err
	}
	if b.postmaster, err = harness.Postmaster(ctx, b.admin); err != nil {
		return err
	}
	if b.res.Postgres, err = readPostgres(ctx, b.admin, cluster); err != nil {
		return err
	}
	printPostgres(b.out, b.res.Postgres)
	return nil
}

// stopPostgres closes the admin connection and stops the cluster.
func (b *bench) stopPostgres(ctx context.Context) error {
	var errs []error
	if b.admin != nil {
		errs = append(errs, b.admin.Close(context.WithoutCancel(ctx)))
	}
	if b.cluster != nil {
		errs = append(errs, b.cluster.Stop())
	}
	return errors.Join(errs...)
}

// measure runs the phases in turn: latency, a throughput round per worker
// count, then the River baseline.
func (b *bench) measure(ctx context.Context) error {
	lat, err := b.latencyPhase(ctx)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	b.res.Latency = lat
	// The machine's speed drifts with its load (other virtual machines on
	// the same host, here): each repetition runs its rounds and River's
	// back to back, so that the ratio of one repetition compares figures
	// taken under the same conditions, and the report gives medians.
	for rep := 1; rep <= b.cfg.repeat; rep++ {
		for _, workers := range b.cfg.workers {
			round, err := b.throughputRound(ctx, rep, workers)
			if err != nil {
				return fmt.Errorf("throughput with %d worker(s), repetition %d: %w", workers, rep, err)
			}
			b.res.Throughput = append(b.res.Throughput, round)
		}
		if b.cfg.river {
			river, err := b.riverPhase(ctx, rep)
			if err != nil {
				return fmt.Errorf("river baseline, repetition %d: %w", rep, err)
			}
			b.res.River = append(b.res.River, river)
		}
	}
	return nil
}
