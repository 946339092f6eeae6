package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	cmd.Stdout, cmd.Stderr = &stdout, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	begun, err := b.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w (log: %s)", cmd.Path, err, logPath)
	}
	end, err := b.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	res := &riverResult{Repetition: rep, Phase: begun.until(end)}
	if err := json.Unmarshal(stdout.Bytes(), &res.riverOutput); err != nil {
		return nil, fmt.Errorf("reading the River baseline's output %q: %w", stdout.String(), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.PeakRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
		res.CPUSeconds = (time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())).Seconds()
	}
	fmt.Fprintf(b.out, "  %d jobs in %.2fs: %.0f jobs/s; load average %s\n", res.Jobs, res.Seconds, res.JobsPerSecond, res.Phase.LoadAverageEnd)
	return res, nil
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
}
