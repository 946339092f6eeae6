package main

import (
	"math"
	"testing"
)

func TestCPUPerStepOf(t *testing.T) {
	r := &roundResult{
		Steps: 8000,
		Phase: phaseStats{PostgresCPUSeconds: 3.6, BenchCPUSeconds: 0.24},
		Processes: []processUsage{
			{Role: "orchestrator", MeasuredCPUSeconds: 0.8, CPUSeconds: 1.5},
			{Role: "worker", MeasuredCPUSeconds: 0.5, CPUSeconds: 0.9},
			{Role: "worker", MeasuredCPUSeconds: 0.3, CPUSeconds: 0.7},
		},
	}
	got := cpuPerStepOf(r)
	want := cpuPerStep{Postgres: 0.45, Orchestrators: 0.1, Workers: 0.1, Bench: 0.03, Total: 0.68}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"postgres", got.Postgres, want.Postgres},
		{"orchestrators", got.Orchestrators, want.Orchestrators},
		{"workers", got.Workers, want.Workers},
		{"bench", got.Bench, want.Bench},
		{"total", got.Total, want.Total},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s: %g ms per step, want %g", c.name, c.got, c.want)
		}
	}
	if got := cpuPerStepOf(&roundResult{}); got != (cpuPerStep{}) {
		t.Errorf("no steps: %+v, want zeros", got)
	}
}

func TestCPUPerJobOf(t *testing.T) {
	r := &riverResult{BurnDown: phaseStats{PostgresCPUSeconds: 2.5}}
	r.Jobs, r.BurnDownCPUSeconds = 50000, 1.5
	got := cpuPerJobOf(r)
	if math.Abs(got.Postgres-0.05) > 1e-9 || math.Abs(got.River-0.03) > 1e-9 || math.Abs(got.Total-0.08) > 1e-9 {
		t.Errorf("cpuPerJobOf = %+v, want 0.05 + 0.03 = 0.08 ms", got)
	}
}
