package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/orchestration/api"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// phase is one measurement with its own database and its own, fresh
// orchestrator and worker processes.
type phase struct {
	// name names the phase in process ids, log files and the report.
	name string
	// database is the phase's database, url its connection URL.
	database, url string
	// sys runs the processes.
	sys *harness.System
	// conn is the benchmark's own connection to the phase's database.
	conn *pgx.Conn
	// clients call the orchestrators' API, one per orchestrator, with
	// enough idle connections kept for every submitting goroutine.
	clients []*api.Client
	hc      *http.Client
	// tasksURLs are the orchestrators' task endpoints, in the order of
	// clients, for the throughput phase's lean submitters.
	tasksURLs []string
	// begun is the snapshot taken when the measured part began, and
	// begunCPU each process's CPU time then, by process name.
	begun    snapshot
	begunCPU map[string]time.Duration
}

// startPhase creates the phase's database, migrates it, registers the
// sample templates and starts the orchestrator and worker processes. It
// returns the phase even on error: closePhase it in every case.
func (b *bench) startPhase(ctx context.Context, name string, workers int) (*phase, error) {
	p := &phase{name: name, database: "tasker_" + strings.ReplaceAll(name, "-", "_")}
	if _, err := b.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{p.database}.Sanitize()); err != nil {
		return p, fmt.Errorf("creating database %s: %w", p.database, err)
	}
	p.url = b.cluster.URL(p.database)
	if err := harness.Migrate(ctx, b.bin, p.url); err != nil {
		return p, err
	}
	if err := harness.ApplySamples(ctx, b.bin, p.url); err != nil {
		return p, err
	}
	sys, err := harness.Start(ctx, harness.Options{
		Binary: b.bin, DatabaseURL: p.url, Dir: b.dir, IDPrefix: name + "-",
		Orchestrators: b.cfg.orchestrators, Workers: workers,
		WorkerArgs: []string{"--concurrency", strconv.Itoa(b.cfg.concurrency)},
	})
	if err != nil {
		return p, err
	}
	p.sys = sys
	if p.conn, err = pgx.Connect(ctx, p.url); err != nil {
		return p, err
	}
	p.hc = &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: b.cfg.submitters, IdleConnTimeout: time.Minute},
	}
	for _, o := range sys.Orchestrators {
		p.clients = append(p.clients, api.NewClient("http://"+o.Addr, "", p.hc))
		p.tasksURLs = append(p.tasksURLs, "http://"+o.Addr+"/v1/tasks")
	}
	return p, nil
}

// begin marks the start of the measured part: a checkpoint, so that none
// is due during the measurement, then a snapshot of the counters.
func (b *bench) begin(ctx context.Context, p *phase) error {
	if _, err := b.admin.Exec(ctx, "CHECKPOINT"); err != nil {
		return err
	}
	p.begunCPU = map[string]time.Duration{}
	for _, proc := range p.sys.Processes() {
		u, err := proc.Usage()
		if err != nil {
			return err
		}
		p.begunCPU[proc.Name] = u.CPU
	}
	var err error
	p.begun, err = b.snapshot(ctx)
	return err
}

// endPhase takes the closing snapshot, reads every process's usage and
// stops the processes with SIGTERM; each must exit 0. The database stays
// until closePhase, for the queries that follow.
func (b *bench) endPhase(ctx context.Context, p *phase) (phaseStats, []processUsage, error) {
	end, err := b.snapshot(ctx)
	if err != nil {
		return phaseStats{}, nil, err
	}
	stats := p.begun.until(end)
	procs := make([]processUsage, 0, len(p.sys.Processes()))
	for _, proc := range p.sys.Processes() {
		u, err := proc.Usage()
		if err != nil {
			return stats, nil, err
		}
		procs = append(procs, processUsage{
			Phase: p.name, Process: proc.Name, Role: roleOf(proc.Name),
			PeakRSSMiB: mib(u.PeakRSS), CPUSeconds: u.CPU.Seconds(),
			MeasuredCPUSeconds: (u.CPU - p.begunCPU[proc.Name]).Seconds(),
		})
	}
	if err := p.sys.Stop(); err != nil {
		return stats, nil, fmt.Errorf("stopping the processes of %s: %w", p.name, err)
	}
	return stats, procs, nil
}

// closePhase kills whatever still runs, closes the connection and drops
// the phase's database, so that nothing of it (autovacuum included) runs
// during the next phase.
func (b *bench) closePhase(ctx context.Context, p *phase) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var errs []error
	if p.hc != nil {
		p.hc.CloseIdleConnections()
	}
	if p.sys != nil {
		errs = append(errs, p.sys.Kill())
	}
	if p.conn != nil {
		errs = append(errs, p.conn.Close(ctx))
	}
	_, err := b.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{p.database}.Sanitize()+" WITH (FORCE)")
	errs = append(errs, err)
	return errors.Join(errs...)
}

// roleOf returns the role of a process named by the harness ("worker-2").
func roleOf(name string) string {
	role, _, _ := strings.Cut(name, "-")
	return role
}

// mib converts bytes to MiB.
func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }
