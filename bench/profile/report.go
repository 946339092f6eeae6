package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/test/e2e/harness"
)

// postgresSettings are the settings printed with the server's version:
// durability, WAL, memory and connections, as the benchmark prints them.
var postgresSettings = []string{
	"fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "wal_level", "wal_buffers",
	"commit_delay", "max_wal_size", "checkpoint_timeout", "shared_buffers", "work_mem",
	"effective_io_concurrency", "max_connections", "autovacuum", "track_commit_timestamp", "pg_stat_statements.track", "pg_stat_statements.track_planning",
}

// printMachine prints the machine the run is on.
func printMachine(w io.Writer, m harness.Machine) {
	fmt.Fprintf(w, "machine: %s, %d cores, %d MiB memory; Linux %s; %s %s; load average %s\n",
		m.CPUModel, m.Cores, m.MemoryMiB, m.Kernel, m.GoVersion, m.Platform, m.LoadAverage)
}

// printPostgres prints the server's version and settings.
func printPostgres(ctx context.Context, w io.Writer, conn *pgx.Conn, dir string) error {
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return err
	}
	rows, err := conn.Query(ctx, "SELECT name, current_setting(name) FROM unnest($1::text[]) AS name", postgresSettings)
	if err != nil {
		return err
	}
	var name, value string
	var parts []string
	if _, err := pgx.ForEachRow(rows, []any{&name, &value}, func() error {
		parts = append(parts, name+"="+value)
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s\n  data directory %s (%s)\n", version, dir, harness.FileSystemOf(dir))
	const perLine = 6
	for chunk := range slices.Chunk(parts, perLine) {
		fmt.Fprintln(w, "  "+strings.Join(chunk, " "))
	}
	return nil
}

// printReport prints what the run found.
func printReport(w io.Writer, res *results) {
	m := res.m
	fmt.Fprintf(w, "\nmeasured: %d tasks, %d steps in %s", m.tasks, m.steps, seconds(m.wall))
	if m.submitted > 0 {
		fmt.Fprintf(w, " (the last submit returned after %s)", seconds(m.submitted))
	}
	fmt.Fprintf(w, ": %.0f tasks/s, %.0f steps/s; load average at the end %s\n",
		float64(m.tasks)/m.wall.Seconds(), float64(m.steps)/m.wall.Seconds(), res.end.load)
	if len(m.endToEnd) > 0 {
		printLatency(w, m.endToEnd, res.transitions)
	}
	printPerStep(w, res)
	printStatements(w, res)
	printTables(w, res)
	fmt.Fprintf(w, "\nGo CPU profile of the measured part: %s\n  go tool pprof -top %s    (or -http=: for the web view)\n",
		res.profilePath, res.profilePath)
	fmt.Fprintf(w, "Go allocations of the measured part, by bytes (-sample_index=alloc_objects for counts):\n"+
		"  go tool pprof -sample_index=alloc_space -top -base %s %s\n",
		allocsPath(res.profilePath, "base"), allocsPath(res.profilePath, ""))
}

// printLatency prints the latency workload's end-to-end times and its
// step transitions.
func printLatency(w io.Writer, endToEnd []time.Duration, transitions []transition) {
	sorted := slices.Clone(endToEnd)
	slices.Sort(sorted)
	at := func(q float64) string { return millis(sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]) }
	fmt.Fprintf(w, "task end to end (submit to the commit that completed it): p50 %s, p90 %s, p99 %s, max %s\n",
		at(0.5), at(0.9), at(0.99), millis(sorted[len(sorted)-1]))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\nstep transitions (from one transaction's start to the next's):")
	fmt.Fprintln(tw, "COUNT\tMEAN\tP50\tP90\t\tFROM → TO")
	for _, t := range transitions {
		fmt.Fprintf(tw, "%d\t%.2f ms\t%.2f ms\t%.2f ms\t\t%s\n", t.count, t.meanMs, t.p50Ms, t.p90Ms, t.name)
	}
	_ = tw.Flush()
}

// printPerStep prints the costs of a step, and of the whole measured part.
func printPerStep(w io.Writer, res *results) {
	steps := float64(res.m.steps)
	var calls int64
	var execMs float64
	for _, s := range res.statements {
		if s.topLevel {
			calls += s.calls
			execMs += s.totalMs
		}
	}
	wall := res.end.at.Sub(res.start.at).Seconds()
	pgCPU := (res.end.postgresCPU - res.start.postgresCPU).Seconds()
	goCPU := (res.end.goCPU - res.start.goCPU).Seconds()
	walBytes := float64(lsn(res.end.walLSN) - lsn(res.start.walLSN))
	wal := walDiff(res.server, res.serverEnd)
	alloc := float64(res.end.goAlloc - res.start.goAlloc)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "COST\tPER STEP\tIN ALL")
	fmt.Fprintf(tw, "statements sent (top-level)\t%.1f\t%d\n", float64(calls)/steps, calls)
	fmt.Fprintf(tw, "statement execution\t%.3f ms\t%.0f ms\n", execMs/steps, execMs)
	fmt.Fprintf(tw, "PostgreSQL CPU (all processes)\t%.3f ms\t%.2f s, %.2f of %d cores\n", 1000*pgCPU/steps, pgCPU, pgCPU/wall, runtime.NumCPU())
	fmt.Fprintf(tw, "Go CPU (engine, workers, submits)\t%.3f ms\t%.2f s, %.2f of %d cores\n", 1000*goCPU/steps, goCPU, goCPU/wall, runtime.NumCPU())
	fmt.Fprintf(tw, "Go allocation\t%.1f KiB, %.0f objects\t%.1f MiB, %d GC cycles\n",
		alloc/steps/(1<<10), float64(res.end.goMallocs-res.start.goMallocs)/steps, alloc/(1<<20), res.end.goGC-res.start.goGC)
	fmt.Fprintf(tw, "WAL written (pg_current_wal_lsn)\t%.2f KiB\t%.2f MiB\n", walBytes/steps/(1<<10), walBytes/(1<<20))
	fmt.Fprintf(tw, "WAL records (pg_stat_wal)\t%.1f, %.2f full-page images\t%d, %d full-page images, %.2f MiB\n",
		float64(wal.walRecords)/steps, float64(wal.walFPI)/steps, wal.walRecords, wal.walFPI, float64(wal.walBytes)/(1<<20))
	fmt.Fprintf(tw, "WAL flushes (pg_stat_wal)\t%.2f\t%d, mean %.2f ms\n", float64(wal.walSyncs)/steps, wal.walSyncs, wal.walSyncMs)
	_ = tw.Flush()
	fmt.Fprintf(w, "(over %s of wall time; PostgreSQL's CPU includes the profiler's own polls)\n", seconds(res.end.at.Sub(res.start.at)))
}

// walDiff returns the WAL statistics from before to after; walSyncMs
// becomes the mean flush time.
func walDiff(before, after serverStats) serverStats {
	d := serverStats{
		walRecords: after.walRecords - before.walRecords, walFPI: after.walFPI - before.walFPI,
		walBytes: after.walBytes - before.walBytes, walSyncs: after.walSyncs - before.walSyncs,
	}
	if d.walSyncs > 0 {
		d.walSyncMs = (after.walSyncMs - before.walSyncMs) / float64(d.walSyncs)
	}
	return d
}

// printStatements prints the statements with the most execution time.
func printStatements(w io.Writer, res *results) {
	if res.cfg.top == 0 {
		return
	}
	steps := float64(res.m.steps)
	var total float64
	for _, s := range res.statements {
		if s.topLevel {
			total += s.totalMs
		}
	}
	fmt.Fprintf(w, "\nstatements by total execution time (pg_stat_statements; nested ones, run inside another statement, are part of its time):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CALLS\tPER STEP\tTOTAL MS\t% TIME\tMEAN MS\tPLANS\tPLAN MS/PLAN\tHIT/CALL\tREAD/CALL\tROWS/CALL\tWAL B/CALL\t\tSTATEMENT")
	for _, s := range res.statements[:min(res.cfg.top, len(res.statements))] {
		calls := float64(max(s.calls, 1))
		label := labelOf(s.query)
		if !s.topLevel {
			label = "(nested) " + label
		}
		fmt.Fprintf(tw, "%d\t%.2f\t%.0f\t%.1f\t%.3f\t%d\t%.3f\t%.1f\t%.2f\t%.2f\t%.0f\t\t%s\n",
			s.calls, float64(s.calls)/steps, s.totalMs, 100*s.totalMs/max(total, 1e-9), s.totalMs/calls,
			s.plans, s.planMs/float64(max(s.plans, 1)),
			float64(s.blocksHit)/calls, float64(s.blocksRead)/calls, float64(s.rows)/calls, s.walBytes/calls, label)
	}
	_ = tw.Flush()
}

// printTables prints the counters of the tables the measured part used,
// the most written first.
func printTables(w io.Writer, res *results) {
	type row struct {
		name string
		t    tableStats
	}
	var rows []row
	for name, after := range res.serverEnd.tables {
		t := after.minus(res.server.tables[name])
		if t.seqScan+t.idxScan+t.ins+t.upd+t.del > 0 {
			rows = append(rows, row{name, t})
		}
	}
	slices.SortFunc(rows, func(a, b row) int {
		return int((b.t.ins + b.t.upd + b.t.del + b.t.seqTupRead) - (a.t.ins + a.t.upd + a.t.del + a.t.seqTupRead))
	})
	fmt.Fprintln(w, "\ntables (pg_stat_user_tables; dead rows are those now, the rest counts the measured part):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SEQ SCANS\tROWS SEQ READ\tINDEX SCANS\tINSERTED\tUPDATED\tHOT UPDATED\t% HOT\tDELETED\tDEAD ROWS\tVACUUMS\t\tTABLE")
	for _, r := range rows {
		t := r.t
		hot := "—"
		if t.upd > 0 {
			hot = strconv.FormatFloat(100*float64(t.hotUpd)/float64(t.upd), 'f', 0, 64)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t\t%s\n",
			t.seqScan, t.seqTupRead, t.idxScan, t.ins, t.upd, t.hotUpd, hot, t.del, t.deadTup, t.vacuums, r.name)
	}
	_ = tw.Flush()
}

// lsn converts a WAL position ("16/B374D848") to a byte offset; 0 when
// malformed.
func lsn(s string) uint64 {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0
	}
	return h<<32 | l
}

// seconds formats a duration in seconds.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// millis formats a duration in milliseconds.
func millis(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
