package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/taskerops/tasker/test/e2e/harness"
)

// riverModuleDir is the River baseline's module, relative to the tasker
// module's root. It is a module of its own so that tasker never depends on
// River.
const riverModuleDir = "bench/river"

// riverDatabase is the database of the River baseline, on the same cluster.
const riverDatabase = "river_bench"

// buildRiver builds the River baseline into dir, outside any workspace.
func buildRiver(ctx context.Context, dir string) (string, error) {
	root, err := harness.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "river-bench")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = filepath.Join(root, riverModuleDir)
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the River baseline in %s: %w\n%s", cmd.Dir, err, out)
	}
	return bin, nil
}

// riverPhase runs the River baseline on a fresh database of the cluster:
// River migrates it, inserts the no-op jobs and times their burn-down.
func (b *bench) riverPhase(ctx context.Context, rep int) (_ *riverResult, err error) {
	fmt.Fprintf(b.out, "\nriver (repetition %d of %d): %d pre-inserted no-op jobs, MaxWorkers %d\n", rep, b.cfg.repeat, b.cfg.riverJobs, b.cfg.riverMaxWorkers)
	if _, err := b.admin.Exec(ctx, "CREATE DATABASE "+riverDatabase); err != nil {
		return nil, err
	}
	defer func() {
		_, dropErr := b.admin.Exec(context.WithoutCancel(ctx), "DROP DATABASE "+riverDatabase+" WITH (FORCE)")
		err = errors.Join(err, dropErr)
	}()
	logPath := filepath.Join(b.dir, fmt.Sprintf("river-bench-%d.log", rep))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }()
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, b.riverBin, //nolint:gosec // the binary built by buildRiver
		"-database-url", b.cluster.URL(riverDatabase), "-jobs", strconv.Itoa(b.cfg.riverJobs),
		"-max-workers", strconv.Itoa(b.cfg.riverMaxWorkers))
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	whole, burnDown, err := b.runRiver(ctx, cmd, stderr, logFile)
	if err != nil {
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	res := &riverResult{Repetition: rep, Phase: whole, BurnDown: burnDown}
	if err := json.Unmarshal(stdout.Bytes(), &res.riverOutput); err != nil {
		return nil, fmt.Errorf("reading the River baseline's output %q: %w", stdout.String(), err)
	}
	res.CPUPerJob = cpuPerJobOf(res)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.PeakRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
		res.CPUSeconds = (time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())).Seconds()
	}
	fmt.Fprintf(b.out, "  %d jobs in %.2fs: %.0f jobs/s; %s\n", res.Jobs, res.Seconds, res.JobsPerSecond, res.Phase.host())
	return res, nil
}

// runRiver runs the River baseline's command, whose stderr is stderr, to
// its end, copying that stderr to log. It returns the figures over the
// whole run and over the burn-down.
func (b *bench) runRiver(ctx context.Context, cmd *exec.Cmd, stderr io.Reader, log io.Writer) (whole, burnDown phaseStats, err error) {
	begun, err := b.snapshot(ctx)
	if err != nil {
		return whole, burnDown, err
	}
	if err := cmd.Start(); err != nil {
		return whole, burnDown, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	burnDown, watchErr := b.watchBurnDown(ctx, stderr, log)
	if err := cmd.Wait(); err != nil {
		return whole, burnDown, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	if watchErr != nil {
		return whole, burnDown, fmt.Errorf("the River baseline's burn-down: %w", watchErr)
	}
	end, err := b.snapshot(ctx)
	return begun.until(end), burnDown, err
}

// The River baseline's marker lines on stderr around its burn-down
// (bench/river: markBurnDownStart and markBurnDownEnd).
const (
	riverBurnDownStart = "river bench: burn-down starts"
	riverBurnDownEnd   = "river bench: burn-down ended"
)

// watchBurnDown copies the River baseline's stderr to log until it ends,
// and takes a snapshot at each of its burn-down markers; it returns the
// figures between the two. It reads to the end whatever happens, as
// exec.Cmd.Wait requires.
func (b *bench) watchBurnDown(ctx context.Context, stderr io.Reader, log io.Writer) (phaseStats, error) {
	var (
		start, end snapshot
		seen       int
		errs       []error
	)
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		line := lines.Text()
		if _, err := fmt.Fprintln(log, line); err != nil {
			errs = append(errs, err)
		}
		var err error
		switch line {
		case riverBurnDownStart:
			start, err = b.snapshot(ctx)
			seen++
		case riverBurnDownEnd:
			end, err = b.snapshot(ctx)
			seen++
		}
		errs = append(errs, err)
	}
	errs = append(errs, lines.Err())
	if err := errors.Join(errs...); err != nil {
		return phaseStats{}, err
	}
	if seen != 2 {
		return phaseStats{}, fmt.Errorf("saw %d of its 2 marker lines", seen)
	}
	return start.until(end), nil
}

// riverOutput is the JSON object the River baseline prints.
type riverOutput struct {
	RiverVersion        string  `json:"river_version"`
	Jobs                int     `json:"jobs"`
	Seconds             float64 `json:"seconds"`
	JobsPerSecond       float64 `json:"jobs_per_second"`
	InsertSeconds       float64 `json:"insert_seconds"`
	MaxWorkers          int     `json:"max_workers"`
	FetchCooldownMs     float64 `json:"fetch_cooldown_ms"`
	FetchPollIntervalMs float64 `json:"fetch_poll_interval_ms"`
	PoolMaxConns        int32   `json:"pool_max_conns"`
	BurnDownCPUSeconds  float64 `json:"burn_down_cpu_seconds"`
}

// riverResult is the River baseline's figure, its process's usage and the
// server's counters over its whole run (migration, insert and burn-down).
type riverResult struct {
	riverOutput

	// Repetition counts from 1.
	Repetition int        `json:"repetition"`
	PeakRSSMiB float64    `json:"peak_rss_mib"`
	CPUSeconds float64    `json:"cpu_seconds"`
	Phase      phaseStats `json:"phase"`
	// BurnDown covers the timed burn-down alone.
	BurnDown phaseStats `json:"burn_down"`
	// CPUPerJob divides the CPU time of the burn-down by the jobs.
	CPUPerJob cpuPerJob `json:"cpu_ms_per_job"`
}

// cpuPerJob is River's CPU time per job during its burn-down, in
// milliseconds: PostgreSQL's processes and River's.
type cpuPerJob struct {
	Postgres float64 `json:"postgres"`
	River    float64 `json:"river"`
	Total    float64 `json:"total"`
}

// cpuPerJobOf computes r's CPUPerJob.
func cpuPerJobOf(r *riverResult) cpuPerJob {
	if r.Jobs == 0 {
		return cpuPerJob{}
	}
	c := cpuPerJob{
		Postgres: 1000 * r.BurnDown.PostgresCPUSeconds / float64(r.Jobs),
		River:    1000 * r.BurnDownCPUSeconds / float64(r.Jobs),
	}
	c.Total = c.Postgres + c.River
	return c
}
