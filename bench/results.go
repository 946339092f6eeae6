package main

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/test/e2e/harness"
)

// results is everything a run found; bench-results.json holds it.
type results struct {
	StartedAt  time.Time       `json:"started_at"`
	Seconds    float64         `json:"seconds"`
	Config     configRecord    `json:"config"`
	Machine    harness.Machine `json:"machine"`
	Postgres   postgresInfo    `json:"postgres"`
	Figures    []figure        `json:"figures"`
	Method     []string        `json:"method"`
	Latency    *latencyResult  `json:"latency"`
	Throughput []*roundResult  `json:"throughput"`
	River      []*riverResult  `json:"river,omitempty"`
}

// configRecord is the run's configuration as the JSON file records it.
type configRecord struct {
	Linear          int     `json:"linear_tasks"`
	Mixed           int     `json:"mixed_dag_tasks"`
	Warmup          int     `json:"warmup_tasks"`
	PollMs          float64 `json:"latency_poll_ms"`
	Diamond         int     `json:"diamond_tasks"`
	Submitters      int     `json:"submitters"`
	Workers         []int   `json:"workers"`
	Orchestrators   int     `json:"orchestrators"`
	Concurrency     int     `json:"worker_concurrency"`
	Repeat          int     `json:"repetitions"`
	RiverJobs       int     `json:"river_jobs"`
	RiverMaxWorkers int     `json:"river_max_workers"`
}

// record returns the configuration to record.
func (c config) record() configRecord {
	return configRecord{
		Linear: c.linear, Mixed: c.mixed, Warmup: c.warmup, PollMs: ms(c.poll),
		Diamond: c.diamond, Submitters: c.submitters, Workers: c.workers,
		Orchestrators: c.orchestrators, Concurrency: c.concurrency, Repeat: c.repeat,
		RiverJobs: c.riverJobs, RiverMaxWorkers: c.riverMaxWorkers,
	}
}

// figure is one line of the report: a measured value and, when the issue
// sets one, its target.
type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Target is the target as text ("≤ 25 ms"); Pass says whether it was
	// met. Both are absent for figures without a target.
	Target string `json:"target,omitempty"`
	Pass   *bool  `json:"pass,omitempty"`
}

// latencyResult is the latency phase's outcome.
type latencyResult struct {
	Linear    taskLatency    `json:"linear"`
	Mixed     taskLatency    `json:"mixed_dag"`
	Dispatch  dispatchResult `json:"dispatch"`
	Breakdown stepBreakdown  `json:"breakdown"`
	Phase     phaseStats     `json:"phase"`
	Processes []processUsage `json:"processes"`
}

// taskLatency sums up the sequential tasks of one workflow.
type taskLatency struct {
	Workflow string `json:"workflow"`
	Tasks    int    `json:"tasks"`
	// EndToEnd runs from just before the POST to the commit of the
	// transaction that completed the task: the reported figure.
	EndToEnd dist `json:"end_to_end"`
	// ToCompletedAt runs to the task's completed_at instead, the start of
	// that transaction; ToSeen to the poll that saw the task complete.
	ToCompletedAt dist `json:"to_completed_at"`
	ToSeen        dist `json:"to_seen_by_poll"`
	// Post is the POST's round trip.
	Post dist `json:"post"`

	ids []uuid.UUID
}

// summarizeTasks computes a workflow's latency distributions.
func summarizeTasks(label string, timings []taskTiming) taskLatency {
	var e2e, txStart, seen, post []time.Duration
	l := taskLatency{Workflow: label, Tasks: len(timings)}
	for _, t := range timings {
		e2e = append(e2e, t.commit.Sub(t.start))
		txStart = append(txStart, t.txStart.Sub(t.start))
		seen = append(seen, t.detected.Sub(t.start))
		post = append(post, t.created.Sub(t.start))
		l.ids = append(l.ids, t.id)
	}
	l.EndToEnd, l.ToCompletedAt, l.ToSeen, l.Post = distOf(e2e), distOf(txStart), distOf(seen), distOf(post)
	return l
}

// dispatchResult sums up the dispatch of the latency phase's steps.
type dispatchResult struct {
	Steps int `json:"steps"`
	// Retried counts steps that needed more than one attempt (their first
	// attempt is measured).
	Retried int `json:"retried"`
	// EnqueueCommitToClaimCommit runs from the commit of the transaction
	// that enqueued the step to the commit of the worker's claim, measured
	// for each step.
	EnqueueCommitToClaimCommit dist `json:"enqueue_commit_to_claim_commit"`
	// EnqueuedAtToStartedAt is started_at − enqueued_at: between the starts
	// of those two transactions.
	EnqueuedAtToStartedAt dist `json:"enqueued_at_to_started_at"`
	// EnqueuedAtToClaimCommit runs from enqueued_at, the start the
	// worker's own metric uses, to the claim's commit.
	EnqueuedAtToClaimCommit dist `json:"enqueued_at_to_claim_commit"`
	// WorkerMetric is what the worker's histogram recorded meanwhile, and
	// ClaimCommitToHandlerMeanMs the mean time from the claim's commit to
	// the handler's start that follows from it.
	WorkerMetric               *workerMetric `json:"worker_metric,omitempty"`
	WorkerMetricError          string        `json:"worker_metric_error,omitempty"`
	ClaimCommitToHandlerMeanMs *float64      `json:"claim_commit_to_handler_start_mean_ms,omitempty"`
	// EnqueueCommitToHandlerStart estimates the whole dispatch, the
	// reported figure: EnqueueCommitToClaimCommit shifted by
	// ClaimCommitToHandlerMeanMs.
	EnqueueCommitToHandlerStart *dist `json:"enqueue_commit_to_handler_start_estimate,omitempty"`
}

// shifted returns the distribution with every value increased by msToAdd.
func (d dist) shifted(msToAdd float64) dist {
	d.MinMs += msToAdd
	d.P50Ms += msToAdd
	d.P95Ms += msToAdd
	d.P99Ms += msToAdd
	d.MaxMs += msToAdd
	d.MeanMs += msToAdd
	return d
}

// workerMetric is the worker's dispatch histogram over the measured steps.
type workerMetric struct {
	Steps  int64   `json:"steps"`
	MeanMs float64 `json:"mean_ms"`
	// Within maps each bucket bound, in seconds, to the fraction of the
	// steps whose handler started within it.
	Within map[string]float64 `json:"within"`
}

// roundResult is one throughput round's outcome.
type roundResult struct {
	// Repetition counts from 1.
	Repetition    int `json:"repetition"`
	Workers       int `json:"workers"`
	Orchestrators int `json:"orchestrators"`
	Concurrency   int `json:"worker_concurrency"`
	Tasks         int `json:"tasks"`
	Steps         int `json:"steps"`
	// SubmitSeconds runs from the first POST to the answer of the last,
	// WallSeconds to the commit of the last completion.
	SubmitSeconds  float64        `json:"submit_seconds"`
	WallSeconds    float64        `json:"wall_seconds"`
	StepsPerSecond float64        `json:"steps_per_second"`
	TasksPerSecond float64        `json:"tasks_per_second"`
	Phase          phaseStats     `json:"phase"`
	Processes      []processUsage `json:"processes"`
	// CPUPerStep divides the CPU time of the measured part by the steps.
	CPUPerStep cpuPerStep `json:"cpu_ms_per_step"`
}

// cpuPerStep is a throughput round's CPU time per step, in milliseconds:
// PostgreSQL's processes, the orchestrators, the workers and the
// benchmark itself (its POSTs and polls), over the measured part.
type cpuPerStep struct {
	Postgres      float64 `json:"postgres"`
	Orchestrators float64 `json:"orchestrators"`
	Workers       float64 `json:"workers"`
	Bench         float64 `json:"bench"`
	Total         float64 `json:"total"`
}

// cpuPerStepOf computes r's CPUPerStep from its phase and processes.
func cpuPerStepOf(r *roundResult) cpuPerStep {
	if r.Steps == 0 {
		return cpuPerStep{}
	}
	per := func(seconds float64) float64 { return 1000 * seconds / float64(r.Steps) }
	c := cpuPerStep{Postgres: per(r.Phase.PostgresCPUSeconds), Bench: per(r.Phase.BenchCPUSeconds)}
	for _, p := range r.Processes {
		switch p.Role {
		case "orchestrator":
			c.Orchestrators += per(p.MeasuredCPUSeconds)
		case "worker":
			c.Workers += per(p.MeasuredCPUSeconds)
		}
	}
	c.Total = c.Postgres + c.Orchestrators + c.Workers + c.Bench
	return c
}

// processUsage is one process's usage, read just before it was stopped:
// its peak RSS and CPU time over its whole life, and its CPU time over the
// measured part.
type processUsage struct {
	Phase              string  `json:"phase"`
	Process            string  `json:"process"`
	Role               string  `json:"role"`
	PeakRSSMiB         float64 `json:"peak_rss_mib"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	MeasuredCPUSeconds float64 `json:"measured_cpu_seconds"`
}

// dist is a distribution of durations, in milliseconds.
type dist struct {
	N      int     `json:"n"`
	MinMs  float64 `json:"min_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// distOf computes the distribution of ds, with nearest-rank percentiles.
func distOf(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	rank := func(p float64) float64 {
		return ms(sorted[max(int(math.Ceil(p*float64(len(sorted)))), 1)-1])
	}
	return dist{
		N: len(sorted), MinMs: ms(sorted[0]), MaxMs: ms(sorted[len(sorted)-1]),
		P50Ms: rank(0.50), P95Ms: rank(0.95), P99Ms: rank(0.99),
		MeanMs: ms(sum) / float64(len(sorted)),
	}
}

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeJSON writes the results to path.
func writeJSON(path string, res *results) error {
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644) //nolint:gosec // a report meant to be read
}
