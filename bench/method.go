package main

import "fmt"

// method says how each figure of this run was measured, with the numbers
// that qualify it.
func method(res *results) []string {
	c := res.Config
	lines := []string{
		"every time is this machine's wall clock, which PostgreSQL shares; PostgreSQL runs with track_commit_timestamp=on, " +
			"so the commit time of any transaction that wrote a row is known (pg_xact_commit_timestamp(xmin))",
	}
	if l := res.Latency; l != nil {
		lines = append(lines,
			fmt.Sprintf("end to end: %d linear then %d mixed-DAG tasks, one at a time (1 worker), each from just before its POST "+
				"to the commit of the transaction that made it complete; the benchmark reads the task row every %.0f ms only to "+
				"learn that it is done. That commit timestamp is taken just before the commit's WAL flush, which took %.2f ms on "+
				"average in this phase (pg_stat_wal); linear p50 to completed_at (the completing transaction's start) was %.1f ms, "+
				"to the poll that saw it %.1f ms",
				c.Linear, c.Mixed, c.PollMs, l.Phase.WALFlushMeanMs, l.Linear.ToCompletedAt.P50Ms, l.Linear.ToSeen.P50Ms),
			fmt.Sprintf("dispatch: for each of the %d steps of those tasks, from the commit of the transaction that enqueued it "+
				"to the commit of the worker's claim, from the commit timestamps of the step's transition rows (a commit "+
				"timestamp precedes that commit's WAL flush, so the enqueue's flush, after which workers see the step, is "+
				"inside the figure and the claim's is not); for comparison, started_at − enqueued_at, the starts of "+
				"those two transactions, has p50 %.2f ms",
				l.Dispatch.Steps, l.Dispatch.EnqueuedAtToStartedAt.P50Ms),
			dispatchRest(l.Dispatch),
		)
	}
	lines = append(lines,
		fmt.Sprintf("throughput: %d diamond tasks (4 steps each) POSTed by %d goroutines to fresh processes on a fresh database "+
			"(one request body, encoded once; each answer's status checked and its body read, not decoded); "+
			"steps and tasks divided by the time from just before the first POST to the commit of the last task completion; "+
			"a count of complete tasks every 100 ms only tells when to stop", c.Diamond, c.Submitters),
		"resources: VmHWM (peak resident set) from /proc/PID/status and utime+stime from /proc/PID/stat (CLK_TCK) of each "+
			"process, read just before it is stopped",
		"CPU per step: the CPU time of every PostgreSQL process, the orchestrators, the workers and the benchmark "+
			"itself (its POSTs), each read when the measured part begins and when it ends, divided by the steps; "+
			"CPU per River job: that of every PostgreSQL process and of River's process between the marker lines "+
			"River's program prints around its burn-down, divided by the jobs. While both runs keep the cores busy, "+
			"the ratio of the throughputs is close to the inverse of the ratio of these costs",
		fmt.Sprintf("repetitions: the throughput rounds and River's run are repeated %d time(s), each repetition's back to back; "+
			"a throughput or River figure is the median of its repetitions, and the ratio is the median of each repetition's "+
			"best steps/s ÷ its own River jobs/s, so that the machine's load, which drifts from minute to minute, "+
			"weighs on both sides of each ratio alike", c.Repeat),
	)
	if len(res.River) > 0 {
		r := res.River[0]
		lines = append(lines, fmt.Sprintf("River %s: %d no-op jobs inserted beforehand (InsertManyFast, not timed), then "+
			"jobs / time from Client.Start to the last job's completion event, as River's own `river bench` measures; "+
			"MaxWorkers %d, FetchCooldown %.0f ms, FetchPollInterval %.0f ms, pool of %d connections (River's benchmark settings)",
			r.RiverVersion, r.Jobs, r.MaxWorkers, r.FetchCooldownMs, r.FetchPollIntervalMs, r.PoolMaxConns))
	}
	return lines
}

// dispatchRest explains what the dispatch figure leaves out.
func dispatchRest(d dispatchResult) string {
	if d.WorkerMetric == nil {
		return "the handler starts after the claim's commit, its WAL flush and the load of the step's inputs; " +
			"the worker's own metric could not be read to say how long that takes (" + d.WorkerMetricError + ")"
	}
	return fmt.Sprintf("the handler starts after the claim's commit, its WAL flush and the load of the step's inputs, which "+
		"the database does not record: the worker's own histogram (enqueued_at → handler start, mean %.2f ms over %d steps) "+
		"minus the mean of enqueued_at → claim commit puts that at %.2f ms on average; the dispatch percentiles add this "+
		"mean to the per-step figure, an estimate that holds while that part varies little", d.WorkerMetric.MeanMs, d.WorkerMetric.Steps, *d.ClaimCommitToHandlerMeanMs)
}
