package main

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/test/e2e/harness"
)

// counters are the figures read at one moment that two moments subtract:
// CPU, Go's allocations and the WAL position.
type counters struct {
	at time.Time
	// postgresCPU is the CPU time of the postmaster and all its children,
	// live and ended; goCPU that of this process.
	postgresCPU, goCPU time.Duration
	// goAlloc and goMallocs are the bytes and objects this process has
	// allocated, goGC its completed GC cycles.
	goAlloc, goMallocs uint64
	goGC               uint32
	// walLSN is pg_current_wal_lsn(), as text.
	walLSN string
	load   string
}

// snapshot reads the counters now.
func (p *profiler) snapshot(ctx context.Context) (counters, error) {
	c := counters{at: time.Now(), load: harness.LoadAverage()}
	var err error
	if c.postgresCPU, err = harness.TreeCPU(p.postmaster); err != nil {
		return c, err
	}
	if c.goCPU, err = harness.SelfCPU(); err != nil {
		return c, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c.goAlloc, c.goMallocs, c.goGC = ms.TotalAlloc, ms.Mallocs, ms.NumGC
	err = p.db.QueryRow(ctx, tag+"SELECT pg_current_wal_lsn()::text").Scan(&c.walLSN)
	return c, err
}

// serverStats are PostgreSQL's cumulative statistics of WAL and tables.
// Each backend publishes them at most once a second and when it exits, so
// the closing ones are read once the engine and workers have disconnected.
type serverStats struct {
	// walRecords, walFPI and walBytes are pg_stat_wal's; walSyncs and
	// walSyncMs its WAL flushes (fdatasync) and the time they took.
	walRecords, walFPI, walBytes, walSyncs int64
	walSyncMs                              float64
	tables                                 map[string]tableStats
}

// tableStats are a table's counters of pg_stat_user_tables.
type tableStats struct {
	seqScan, seqTupRead, idxScan, ins, upd, hotUpd, del, deadTup, vacuums int64
}

// minus returns the counters of t since before; deadTup, a gauge, stays
// t's.
func (t tableStats) minus(before tableStats) tableStats {
	return tableStats{
		seqScan: t.seqScan - before.seqScan, seqTupRead: t.seqTupRead - before.seqTupRead, idxScan: t.idxScan - before.idxScan,
		ins: t.ins - before.ins, upd: t.upd - before.upd, hotUpd: t.hotUpd - before.hotUpd, del: t.del - before.del,
		deadTup: t.deadTup, vacuums: t.vacuums - before.vacuums,
	}
}

// readServerStats reads pg_stat_wal and pg_stat_user_tables.
func (p *profiler) readServerStats(ctx context.Context) (serverStats, error) {
	s := serverStats{tables: map[string]tableStats{}}
	err := p.db.QueryRow(ctx, tag+"SELECT wal_records, wal_fpi, wal_bytes::bigint, wal_sync, wal_sync_time FROM pg_stat_wal").
		Scan(&s.walRecords, &s.walFPI, &s.walBytes, &s.walSyncs, &s.walSyncMs)
	if err != nil {
		return s, err
	}
	rows, err := p.db.Query(ctx, tag+`SELECT schemaname || '.' || relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0),
		n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_dead_tup, vacuum_count + autovacuum_count FROM pg_stat_user_tables`)
	if err != nil {
		return s, err
	}
	var name string
	var t tableStats
	_, err = pgx.ForEachRow(rows, []any{&name, &t.seqScan, &t.seqTupRead, &t.idxScan, &t.ins, &t.upd, &t.hotUpd, &t.del, &t.deadTup, &t.vacuums}, func() error {
		s.tables[name] = t
		return nil
	})
	return s, err
}

// waitGone waits until the backends pids have exited, or with nil pids
// until no other client is connected to the database: backends publish
// their statistics when they exit.
func (p *profiler) waitGone(ctx context.Context, pids []int32) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		var left int
		err := p.db.QueryRow(ctx, tag+`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
			  AND ($1::int4[] IS NULL OR pid = ANY($1))`, pids).Scan(&left)
		if err != nil {
			return fmt.Errorf("waiting for the engine's and workers' connections to close: %w", err)
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the engine's and workers' connections to close: %d still open: %w", left, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// begin marks the start of the measured part: a checkpoint, so that none
// is due during it, pg_stat_statements emptied, then the counters and
// statistics.
func (p *profiler) begin(ctx context.Context) (counters, serverStats, error) {
	if _, err := p.db.Exec(ctx, tag+"CHECKPOINT"); err != nil {
		return counters{}, serverStats{}, err
	}
	if _, err := p.db.Exec(ctx, tag+"SELECT pg_stat_statements_reset()"); err != nil {
		return counters{}, serverStats{}, err
	}
	stats, err := p.readServerStats(ctx)
	if err != nil {
		return counters{}, stats, err
	}
	c, err := p.snapshot(ctx)
	return c, stats, err
}

// statement is one row of pg_stat_statements.
type statement struct {
	topLevel                                  bool
	calls, plans, blocksHit, blocksRead, rows int64
	totalMs, planMs, walBytes                 float64
	query                                     string
}

// readStatements reads pg_stat_statements for the database, leaving out
// the profiler's own statements, by total execution time.
func (p *profiler) readStatements(ctx context.Context) ([]statement, error) {
	rows, err := p.db.Query(ctx, tag+`SELECT toplevel, calls, plans, total_plan_time, shared_blks_hit, shared_blks_read, rows, total_exec_time, wal_bytes::float8, query
		FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE $1
		ORDER BY total_exec_time DESC`, strings.TrimSpace(tag)+"%")
	if err != nil {
		return nil, err
	}
	var all []statement
	var s statement
	_, err = pgx.ForEachRow(rows, []any{&s.topLevel, &s.calls, &s.plans, &s.planMs, &s.blocksHit, &s.blocksRead, &s.rows, &s.totalMs, &s.walBytes, &s.query}, func() error {
		all = append(all, s)
		return nil
	})
	return all, err
}

// Patterns that name statements without a sqlc name.
var (
	sqlcName  = regexp.MustCompile(`^-- name: (\w+)`)
	queueName = regexp.MustCompile(`"pgmq"\."q_(\w+)"`)
	fkTable   = regexp.MustCompile(`FROM ONLY "(\w+)"\."(\w+)" x WHERE .* FOR KEY SHARE OF x`)
	spaces    = regexp.MustCompile(`\s+`)
)

// labelOf names a statement: its sqlc query name (internal/dbsqlc), the
// queue operation of orchestration/queue and the queue, the claim and
// outcome statements of orchestration/dispatch, a foreign-key check, or
// else the start of its text.
func labelOf(query string) string {
	if m := sqlcName.FindStringSubmatch(query); m != nil {
		return m[1]
	}
	queue := ""
	if m := queueName.FindStringSubmatch(query); m != nil {
		queue = " " + m[1]
	}
	switch {
	case strings.Contains(query, "), acked AS ("):
		return "dispatch outcome (record.go)"
	case strings.HasPrefix(query, "WITH RECURSIVE wanted AS ("):
		return "dispatch claim (claim.go)"
	case strings.HasPrefix(query, "WITH picked AS ("):
		return "queue read" + queue
	case strings.HasPrefix(query, "WITH sent AS ("):
		return "queue send" + queue
	case strings.HasPrefix(query, "WITH deleted AS (DELETE"):
		return "queue delete" + queue
	case strings.HasPrefix(query, "WITH moved AS ("):
		return "queue archive" + queue
	}
	if m := fkTable.FindStringSubmatch(query); m != nil {
		return "foreign-key check " + m[1] + "." + m[2]
	}
	const width = 90
	text := strings.TrimSpace(spaces.ReplaceAllString(query, " "))
	if len(text) > width {
		text = text[:width] + "…"
	}
	return text
}
