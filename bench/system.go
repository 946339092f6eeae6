package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/pgcluster"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// postgresInfo describes the benchmark's PostgreSQL server.
type postgresInfo struct {
	Version string `json:"version"`
	// Settings are the values of postgresSettings.
	Settings map[string]string `json:"settings"`
	// DataDirectory is where the cluster lives, FileSystem what holds it.
	DataDirectory string `json:"data_directory"`
	FileSystem    string `json:"file_system"`
}

// postgresSettings are the settings the report prints: durability, WAL,
// memory, connections, and the two that the measurements rely on
// (track_commit_timestamp, track_wal_io_timing).
var postgresSettings = []string{
	"fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "wal_level", "wal_buffers",
	"commit_delay", "max_wal_size", "checkpoint_timeout", "shared_buffers", "work_mem",
	"effective_io_concurrency", "max_connections", "autovacuum", "track_commit_timestamp", "track_wal_io_timing",
}

// readPostgres reads the server's version and settings.
func readPostgres(ctx context.Context, conn *pgx.Conn, cluster *pgcluster.Cluster) (postgresInfo, error) {
	info := postgresInfo{Settings: map[string]string{}, DataDirectory: cluster.Dir(), FileSystem: harness.FileSystemOf(cluster.Dir())}
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&info.Version); err != nil {
		return info, err
	}
	rows, err := conn.Query(ctx, "SELECT name, current_setting(name) FROM unnest($1::text[]) AS name", postgresSettings)
	if err != nil {
		return info, err
	}
	var name, value string
	_, err = pgx.ForEachRow(rows, []any{&name, &value}, func() error {
		info.Settings[name] = value
		return nil
	})
	return info, err
}

// snapshot holds cumulative counters at one moment; two of them give a
// phase's figures.
type snapshot struct {
	at time.Time
	// walSyncs and walSyncMs are pg_stat_wal's wal_sync and wal_sync_time:
	// the WAL flushes of the whole server and the time they took.
	walSyncs  int64
	walSyncMs float64
	// postgresCPU is the CPU time of the postmaster and all its children,
	// live and ended; selfCPU that of this process.
	postgresCPU, selfCPU time.Duration
	load                 string
	// ticks are the machine's CPU counters.
	ticks harness.MachineTicks
}

// phaseStats are the differences between a phase's two snapshots.
type phaseStats struct {
	Seconds float64 `json:"seconds"`
	// WALFlushes counts the server's WAL flushes (fdatasync), and
	// WALFlushMeanMs is their mean duration.
	WALFlushes     int64   `json:"wal_flushes"`
	WALFlushMeanMs float64 `json:"wal_flush_mean_ms"`
	// PostgresCPUSeconds is the CPU time of all PostgreSQL processes,
	// BenchCPUSeconds that of the benchmark itself (submits, polling).
	PostgresCPUSeconds float64 `json:"postgres_cpu_seconds"`
	BenchCPUSeconds    float64 `json:"bench_cpu_seconds"`
	LoadAverageStart   string  `json:"load_average_start"`
	LoadAverageEnd     string  `json:"load_average_end"`
	// MachineBusyPercent is the share of the machine's CPU time (all cores)
	// spent running anything; StealPercent the share a virtual machine's
	// cores waited for their host, which ran something else: CPU the
	// measured processes could not have, a sign of a noisy host.
	MachineBusyPercent float64 `json:"machine_busy_percent"`
	StealPercent       float64 `json:"steal_percent"`
}

// host describes the machine's load over the phase, for its progress line.
func (st phaseStats) host() string {
	return fmt.Sprintf("load average %s; machine busy %.0f %%, steal %.1f %%", st.LoadAverageEnd, st.MachineBusyPercent, st.StealPercent)
}

// snapshot reads the counters now.
func (b *bench) snapshot(ctx context.Context) (snapshot, error) {
	s := snapshot{at: time.Now(), load: harness.LoadAverage()}
	var err error
	if s.ticks, err = harness.ReadMachineTicks(); err != nil {
		return s, err
	}
	err = b.admin.QueryRow(ctx, "SELECT wal_sync, wal_sync_time FROM pg_stat_wal").Scan(&s.walSyncs, &s.walSyncMs)
	if err != nil {
		return s, err
	}
	if s.postgresCPU, err = harness.TreeCPU(b.postmaster); err != nil {
		return s, err
	}
	s.selfCPU, err = harness.SelfCPU()
	return s, err
}

// until returns the figures from s to end.
func (s snapshot) until(end snapshot) phaseStats {
	st := phaseStats{
		Seconds:    end.at.Sub(s.at).Seconds(),
		WALFlushes: end.walSyncs - s.walSyncs, LoadAverageStart: s.load, LoadAverageEnd: end.load,
		PostgresCPUSeconds: (end.postgresCPU - s.postgresCPU).Seconds(),
		BenchCPUSeconds:    (end.selfCPU - s.selfCPU).Seconds(),
	}
	st.MachineBusyPercent, st.StealPercent = s.ticks.Percent(end.ticks)
	if st.WALFlushes > 0 {
		st.WALFlushMeanMs = (end.walSyncMs - s.walSyncMs) / float64(st.WALFlushes)
	}
	return st
}
