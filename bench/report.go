package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/taskerops/tasker/test/e2e/harness"
)

// The targets (2-core machine, PostgreSQL fsync on).
const (
	targetLinearP50Ms     = 25
	targetLinearP99Ms     = 75
	targetMixedP50Ms      = 40
	targetDispatchP50Ms   = 3
	targetStepsPerSecond  = 2000
	targetRiverPercent    = 25
	targetWorkerPeakRSSMi = 64
)

// atMost is a figure that must not exceed limit.
func atMost(name string, value, limit float64, unit string) figure {
	pass := value <= limit
	return figure{Name: name, Value: value, Unit: unit, Target: "≤ " + formatLimit(limit, unit), Pass: &pass}
}

// atLeast is a figure that must reach limit.
func atLeast(name string, value, limit float64, unit string) figure {
	pass := value >= limit
	return figure{Name: name, Value: value, Unit: unit, Target: "≥ " + formatLimit(limit, unit), Pass: &pass}
}

// info is a figure without a target.
func info(name string, value float64, unit string) figure {
	return figure{Name: name, Value: value, Unit: unit}
}

// evaluate lists the figures of the report, each beside its target.
func evaluate(res *results) []figure {
	l := res.Latency
	figs := []figure{
		atMost("linear task end to end, p50", l.Linear.EndToEnd.P50Ms, targetLinearP50Ms, "ms"),
		info("linear task end to end, p95", l.Linear.EndToEnd.P95Ms, "ms"),
		atMost("linear task end to end, p99", l.Linear.EndToEnd.P99Ms, targetLinearP99Ms, "ms"),
		atMost("mixed-DAG task end to end, p50", l.Mixed.EndToEnd.P50Ms, targetMixedP50Ms, "ms"),
		info("mixed-DAG task end to end, p95", l.Mixed.EndToEnd.P95Ms, "ms"),
		info("mixed-DAG task end to end, p99", l.Mixed.EndToEnd.P99Ms, "ms"),
	}
	figs = append(figs, dispatchFigures(l.Dispatch)...)
	reps := repetitions(res)
	of := ""
	if len(reps) > 1 {
		of = fmt.Sprintf(", median of %d", len(reps))
	}
	for _, workers := range res.Config.Workers {
		var steps, tasks []float64
		for _, rep := range reps {
			if r := rep.rounds[workers]; r != nil {
				steps, tasks = append(steps, r.StepsPerSecond), append(tasks, r.TasksPerSecond)
			}
		}
		if len(steps) > 0 {
			figs = append(figs,
				atLeast(fmt.Sprintf("diamond throughput, %d worker(s)%s", workers, of), median(steps), targetStepsPerSecond, "steps/s"),
				info(fmt.Sprintf("diamond throughput, %d worker(s)%s", workers, of), median(tasks), "tasks/s"))
		}
	}
	var river, ratios []float64
	for _, rep := range reps {
		if rep.river == nil {
			continue
		}
		river = append(river, rep.river.JobsPerSecond)
		if rep.best != nil {
			ratios = append(ratios, 100*rep.best.StepsPerSecond/rep.river.JobsPerSecond)
		}
	}
	if len(river) > 0 {
		r := res.River[0]
		figs = append(figs, info(fmt.Sprintf("River no-op jobs (%d, MaxWorkers %d)%s", r.Jobs, r.MaxWorkers, of), median(river), "jobs/s"))
	}
	if len(ratios) > 0 {
		figs = append(figs, atLeast("best steps/s ÷ River jobs/s, each repetition's"+of, median(ratios), targetRiverPercent, "%"))
	}
	figs = append(figs, cpuFigures(reps, of)...)
	if peak, ok := peakRSS(res, "worker"); ok {
		figs = append(figs, atMost("worker peak RSS under the throughput load", peak, targetWorkerPeakRSSMi, "MiB"))
	}
	if peak, ok := peakRSS(res, "orchestrator"); ok {
		figs = append(figs, info("orchestrator peak RSS under the throughput load", peak, "MiB"))
	}
	return figs
}

// cpuFigures are the CPU time a step of the best rounds cost, what a job
// cost River, and the ratio of the two, each repetition's: the ratio of
// the throughputs is about the inverse of this one while both saturate
// the machine's cores.
func cpuFigures(reps []*repetition, of string) []figure {
	var steps, jobs, ratios []float64
	for _, rep := range reps {
		if rep.best != nil {
			steps = append(steps, rep.best.CPUPerStep.Total)
		}
		if rep.river != nil {
			jobs = append(jobs, rep.river.CPUPerJob.Total)
		}
		if rep.best != nil && rep.river != nil && rep.river.CPUPerJob.Total > 0 {
			ratios = append(ratios, rep.best.CPUPerStep.Total/rep.river.CPUPerJob.Total)
		}
	}
	var figs []figure
	if len(steps) > 0 {
		figs = append(figs, info("CPU per step of the best round, all processes"+of, median(steps), "ms"))
	}
	if len(jobs) > 0 {
		figs = append(figs, info("CPU per River job, PostgreSQL and River"+of, median(jobs), "ms"))
	}
	if len(ratios) > 0 {
		figs = append(figs, info("CPU per step ÷ CPU per River job, each repetition's"+of, median(ratios), "×"))
	}
	return figs
}

// repetition is one repetition's throughput rounds, by worker count, its
// best round and its River run.
type repetition struct {
	n      int
	rounds map[int]*roundResult
	best   *roundResult
	river  *riverResult
}

// repetitions groups the rounds and River runs by repetition, in order.
func repetitions(res *results) []*repetition {
	byN := map[int]*repetition{}
	var reps []*repetition
	get := func(n int) *repetition {
		if byN[n] == nil {
			byN[n] = &repetition{n: n, rounds: map[int]*roundResult{}}
			reps = append(reps, byN[n])
		}
		return byN[n]
	}
	for _, r := range res.Throughput {
		rep := get(r.Repetition)
		rep.rounds[r.Workers] = r
		if rep.best == nil || r.StepsPerSecond > rep.best.StepsPerSecond {
			rep.best = r
		}
	}
	for _, r := range res.River {
		get(r.Repetition).river = r
	}
	slices.SortFunc(reps, func(a, b *repetition) int { return a.n - b.n })
	return reps
}

// median returns the median of values (the mean of the middle two for an
// even count); values must not be empty.
func median(values []float64) float64 {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	mid := len(sorted) / 2
	if len(sorted)%2 == 0 {
		return (sorted[mid-1] + sorted[mid]) / 2
	}
	return sorted[mid]
}

// dispatchFigures are the dispatch figures: the estimate of the whole
// dispatch against the target, then its two parts. Without the worker's
// metric, the measured part stands against the target.
func dispatchFigures(d dispatchResult) []figure {
	c2c := d.EnqueueCommitToClaimCommit
	if d.EnqueueCommitToHandlerStart == nil {
		return []figure{
			atMost("step dispatch, enqueue commit → claim commit (handler start unknown), p50", c2c.P50Ms, targetDispatchP50Ms, "ms"),
			info("step dispatch, enqueue commit → claim commit (handler start unknown), p99", c2c.P99Ms, "ms"),
		}
	}
	whole := *d.EnqueueCommitToHandlerStart
	return []figure{
		atMost("step dispatch, enqueue commit → handler start, p50", whole.P50Ms, targetDispatchP50Ms, "ms"),
		info("step dispatch, enqueue commit → handler start, p99", whole.P99Ms, "ms"),
		info("  = enqueue commit → claim commit (each step), p50", c2c.P50Ms, "ms"),
		info("  + claim commit → handler start (worker metric), mean", *d.ClaimCommitToHandlerMeanMs, "ms"),
	}
}

// peakRSS returns the highest peak RSS of the throughput rounds' processes
// of a role.
func peakRSS(res *results, role string) (float64, bool) {
	peak, found := 0.0, false
	for _, r := range res.Throughput {
		for _, p := range r.Processes {
			if p.Role == role {
				peak, found = max(peak, p.PeakRSSMiB), true
			}
		}
	}
	return peak, found
}

// format writes a value with its unit at a precision that suits the unit.
func format(v float64, unit string) string {
	switch unit {
	case "ms":
		if v < 10 {
			return fmt.Sprintf("%.2f %s", v, unit)
		}
		return fmt.Sprintf("%.1f %s", v, unit)
	case "MiB", "%", "s", "×":
		return fmt.Sprintf("%.1f %s", v, unit)
	default:
		return fmt.Sprintf("%.0f %s", v, unit)
	}
}

// formatLimit writes a target's limit with its unit, without needless
// decimals.
func formatLimit(v float64, unit string) string {
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + unit
}

// printMachine prints the machine the run is on.
func printMachine(w io.Writer, m harness.Machine) {
	fmt.Fprintf(w, "machine: %s, %d cores, %d MiB memory; Linux %s; %s %s; load average %s\n",
		m.CPUModel, m.Cores, m.MemoryMiB, m.Kernel, m.GoVersion, m.Platform, m.LoadAverage)
}

// printPostgres prints the server's version and settings.
func printPostgres(w io.Writer, pg postgresInfo) {
	fmt.Fprintf(w, "%s\n  data directory %s (%s)\n", pg.Version, pg.DataDirectory, pg.FileSystem)
	const perLine = 6
	for chunk := range slices.Chunk(postgresSettings, perLine) {
		parts := make([]string, 0, len(chunk))
		for _, name := range chunk {
			parts = append(parts, name+"="+pg.Settings[name])
		}
		fmt.Fprintln(w, "  "+strings.Join(parts, " "))
	}
}

// printReport prints the figures, the processes' usage and how the figures
// were measured.
func printReport(w io.Writer, res *results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "FIGURE\tVALUE\tTARGET\tRESULT")
	for _, f := range res.Figures {
		target, verdict := "—", ""
		if f.Pass != nil {
			target, verdict = f.Target, "FAIL"
			if *f.Pass {
				verdict = "pass"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, format(f.Value, f.Unit), target, verdict)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	printRepetitions(w, res)
	printUsage(w, res)
	fmt.Fprintln(w, "\nhow the figures are measured:")
	for _, m := range res.Method {
		fmt.Fprintln(w, "  - "+m)
	}
}

// printRepetitions prints each repetition's throughput rounds, River run
// and ratio, from which the figures above take their medians.
func printRepetitions(w io.Writer, res *results) {
	reps := repetitions(res)
	if len(reps) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "REPETITION\t")
	for _, workers := range res.Config.Workers {
		fmt.Fprintf(tw, "%d WORKER(S)\t", workers)
	}
	fmt.Fprintln(tw, "RIVER\tBEST ÷ RIVER\tCPU/STEP (BEST)\tCPU/RIVER JOB\t")
	for _, rep := range reps {
		fmt.Fprintf(tw, "%d\t", rep.n)
		for _, workers := range res.Config.Workers {
			if r := rep.rounds[workers]; r != nil {
				fmt.Fprint(tw, format(r.StepsPerSecond, "steps/s"))
			}
			fmt.Fprint(tw, "\t")
		}
		var river, ratio, step, job string
		if rep.river != nil {
			river, job = format(rep.river.JobsPerSecond, "jobs/s"), format(rep.river.CPUPerJob.Total, "ms")
		}
		if rep.best != nil {
			step = format(rep.best.CPUPerStep.Total, "ms")
		}
		if rep.river != nil && rep.best != nil {
			ratio = format(100*rep.best.StepsPerSecond/rep.river.JobsPerSecond, "%")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", river, ratio, step, job)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(CPU/STEP: the CPU time of PostgreSQL, the orchestrators, the workers and the benchmark's POSTs over the best round's measured part, per step; "+
		"CPU/RIVER JOB: that of PostgreSQL and River over River's burn-down, per job)")
	fmt.Fprintln(w)
}

// printUsage prints each phase's processes with their peak RSS and CPU
// time, and the CPU time of PostgreSQL and of the benchmark itself.
func printUsage(w io.Writer, res *results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PHASE\tPROCESS\tPEAK RSS\tLIFETIME CPU\tMEASURED CPU\tPHASE WALL\tLOAD AVERAGE AT END\t")
	row := func(phase string, st phaseStats, procs []processUsage) {
		sorted := slices.Clone(procs)
		slices.SortStableFunc(sorted, func(a, b processUsage) int { return strings.Compare(a.Role, b.Role) }) // orchestrators first
		for _, p := range sorted {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\t\t\n", phase, p.Process, format(p.PeakRSSMiB, "MiB"),
				format(p.CPUSeconds, "s"), format(p.MeasuredCPUSeconds, "s"))
		}
		fmt.Fprintf(tw, "%s\tpostgres (all)\t\t\t%s\t%s\t%s\t\n", phase, format(st.PostgresCPUSeconds, "s"), format(st.Seconds, "s"), st.LoadAverageEnd)
		fmt.Fprintf(tw, "%s\tbench itself\t\t\t%s\t\t\t\n", phase, format(st.BenchCPUSeconds, "s"))
	}
	if res.Latency != nil {
		row("latency", res.Latency.Phase, res.Latency.Processes)
	}
	for _, r := range res.Throughput {
		row(fmt.Sprintf("throughput %dw #%d", r.Workers, r.Repetition), r.Phase, r.Processes)
	}
	for _, r := range res.River {
		phase := fmt.Sprintf("river #%d", r.Repetition)
		fmt.Fprintf(tw, "%s\triver-bench\t%s\t%s\t%s\t\t\t\n", phase, format(r.PeakRSSMiB, "MiB"), format(r.CPUSeconds, "s"), format(r.BurnDownCPUSeconds, "s"))
		fmt.Fprintf(tw, "%s\tpostgres (all)\t\t%s\t%s\t%s\t%s\t\n", phase, format(r.Phase.PostgresCPUSeconds, "s"),
			format(r.BurnDown.PostgresCPUSeconds, "s"), format(r.Phase.Seconds, "s"), r.Phase.LoadAverageEnd)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(processes' peak RSS is VmHWM and CPU utime+stime over their whole life, start-up and warm-up included, read just before SIGTERM; "+
		"MEASURED CPU covers the measured part only, for River its burn-down; PostgreSQL's LIFETIME CPU is its CPU over River's whole run: migration, insert and burn-down)")
}
