package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskerops/tasker/internal/pgxcodec"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/test/e2e/harness"
	"github.com/taskerops/tasker/worker"
	"github.com/taskerops/tasker/worker/handlers"
)

// The engine's pool as the tasker command sizes it (cmd/tasker: newPool):
// the orchestrator's result goroutines plus 8. A worker's is
// worker.PoolSize, as there.
const (
	engineResultWorkers = 8
	engineExtraConns    = 8
)

// readyTimeout bounds the wait for the workers' LISTEN connections.
const readyTimeout = 30 * time.Second

// system is the engine and the workers, running in this process, each on
// its own pool as in production.
type system struct {
	engine  *orchestration.Engine
	workers []*worker.Worker
	pools   []*pgxpool.Pool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errs    []error
	mu      sync.Mutex
	stopped bool
}

// startSystem starts the engine and cfg.workers workers serving every
// sample namespace, and waits until the workers listen for notifications.
// With a tracer, every pool's connections report their statements to it.
func startSystem(ctx context.Context, url string, cfg config, tr *tracer) (*system, error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := &system{}
	runCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	pool, err := s.newPool(ctx, url, engineResultWorkers+engineExtraConns, tr)
	if err != nil {
		return s, err
	}
	s.engine = orchestration.NewEngine(pool, orchestration.Config{
		ProcessID: "profile-orchestrator", Logger: logger, ResultWorkers: engineResultWorkers,
	})
	s.run(func() error { return s.engine.Run(runCtx) })
	for i := range cfg.workers {
		reg := worker.NewRegistry()
		if err := handlers.RegisterAll(reg); err != nil {
			return s, err
		}
		wpool, err := s.newPool(ctx, url, worker.PoolSize(cfg.concurrency), tr)
		if err != nil {
			return s, err
		}
		w, err := worker.New(wpool, worker.Config{
			WorkerID: fmt.Sprintf("profile-worker-%d", i+1), Namespaces: harness.AllNamespaces,
			Registry: reg, Concurrency: cfg.concurrency, ShutdownGrace: 10 * time.Second, Logger: logger,
		})
		if err != nil {
			return s, err
		}
		s.workers = append(s.workers, w)
		s.run(func() error { return w.Run(runCtx) })
	}
	return s, s.waitReady(ctx)
}

// newPool opens a pool of at least conns connections.
func (s *system) newPool(ctx context.Context, url string, conns int, tr *tracer) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = max(cfg.MaxConns, int32(conns))
	if tr != nil {
		cfg.ConnConfig.Tracer = tr
	}
	// As the tasker command's pools (cmd/tasker: newPool).
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgxcodec.Register(conn.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.pools = append(s.pools, pool)
	return pool, nil
}

// run runs fn in a goroutine until the system stops, keeping its error.
func (s *system) run(fn func() error) {
	s.wg.Go(func() {
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
		}
	})
}

// waitReady waits until every worker is ready.
func (s *system) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for _, w := range s.workers {
		for {
			err := w.Ready(ctx)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for the workers: %w", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// reconnect closes the pools' connections (those in use when they are
// released) and returns the process ids of the backends of those that were
// idle; the pools open new connections as they need them.
func (s *system) reconnect(ctx context.Context) []int32 {
	pids := []int32{}
	for _, pool := range s.pools {
		conns := pool.AcquireAllIdle(ctx)
		for _, c := range conns {
			pids = append(pids, int32(c.Conn().PgConn().PID()))
		}
		pool.Reset()
		for _, c := range conns {
			c.Release()
		}
	}
	return pids
}

// stop stops the engine and the workers (the workers finish their steps in
// flight), waits for them and closes their pools. It returns the errors
// they ended with; calling it again returns nil.
func (s *system) stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("the engine and workers did not stop: %w", ctx.Err())
	}
	for _, pool := range s.pools {
		pool.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}
