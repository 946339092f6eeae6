package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/internal/version"
)

// registration keeps this worker's row in tasker.workers: who it is, which
// namespaces and callables it serves, and a heartbeat.
type registration struct {
	pool *pgxpool.Pool
	cfg  Config
}

func (r *registration) register(ctx context.Context) error {
	host, _ := os.Hostname()
	err := dbsqlc.New().UpsertWorker(ctx, r.pool, dbsqlc.UpsertWorkerParams{
		WorkerID: r.cfg.WorkerID, Hostname: host, Namespaces: r.cfg.Namespaces,
		Callables: r.cfg.Registry.Callables(), Concurrency: int32(max(r.cfg.Concurrency, 0)),
		Version: version.Version,
	})
	if err != nil {
		return fmt.Errorf("worker: registering in tasker.workers: %w", err)
	}
	return nil
}

// heartbeat refreshes the row until ctx ends, re-registering if the row
// disappeared (e.g. a cleanup removed it while the database was away).
func (r *registration) heartbeat(ctx context.Context, log *slog.Logger) {
	ticker := time.NewTicker(r.cfg.HeartbeatInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		n, err := dbsqlc.New().HeartbeatWorker(ctx, r.pool, r.cfg.WorkerID)
		if err == nil && n == 0 {
			err = r.register(ctx)
		}
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "worker heartbeat failed", "error", err)
		}
	}
}

// deregister removes the row on a clean shutdown.
func (r *registration) deregister(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := dbsqlc.New().DeleteWorker(ctx, r.pool, r.cfg.WorkerID); err != nil {
		log.Warn("could not remove the worker's registration", "error", err)
	}
}
