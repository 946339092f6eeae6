package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/wakeup"
)

// Config configures a Worker. Zero values mean the defaults, applied in
// withDefaults.
type Config struct {
	// WorkerID names this process in claims, transitions and the workers
	// table. Default "worker@<hostname>:<pid>".
	WorkerID string
	// Namespaces are the workflow namespaces whose queues this worker
	// serves. Required.
	Namespaces []string
	// Registry holds the handlers this worker runs. Required.
	Registry *Registry
	// Concurrency bounds the steps in flight. Default 16.
	Concurrency int
	// PollInterval, ReadGather, VisibilityTimeout, LeaseMargin: see
	// ProcessorConfig.
	PollInterval, ReadGather, VisibilityTimeout, LeaseMargin time.Duration
	// ShutdownGrace is how long running steps may take to finish after the
	// worker is told to stop; the rest are handed back. Default 30s.
	ShutdownGrace time.Duration
	// HeartbeatInterval is how often the worker refreshes its row in
	// tasker.workers. Default 10s.
	HeartbeatInterval time.Duration
	// Metrics receives the worker's metrics; default: a new registry.
	Metrics *prometheus.Registry
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// maxStatementConns bounds the connections a worker's steps use at once;
// see PoolSize.
const maxStatementConns = 28

// PoolSize is the pgx pool size (pool_max_conns) a worker of the given
// concurrency needs: a connection per step in flight, up to 28, plus four
// for the queue reads, the heartbeat and the readiness probe. A step uses
// a connection only for a statement (its claim, a lease renewal, its
// outcome), never while its handler runs, and the steps that a read
// brought in are claimed in one statement, as the outcomes that finish
// together are stored in one: at concurrency 256, a worker running
// no-op steps as fast as PostgreSQL took them held about 24 connections,
// and capping its pool at 32 left its throughput as it was. Statements
// beyond the pool wait for a connection.
func PoolSize(concurrency int) int {
	return min(max(concurrency, 1), maxStatementConns) + 4
}

func (c Config) withDefaults() Config {
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		c.WorkerID = fmt.Sprintf("worker@%s:%d", host, os.Getpid())
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.Metrics == nil {
		c.Metrics = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Worker is one worker process: its event bus, handler bridge, queue
// processor, wake-up listener and registration.
type Worker struct {
	pool      *pgxpool.Pool
	cfg       Config
	log       *slog.Logger
	bus       *Bus
	bridge    *HandlerBridge
	processor *Processor
	listener  *wakeup.Listener
	registry  *registration
}

// New builds a Worker over pool.
func New(pool *pgxpool.Pool, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	if cfg.Registry == nil {
		return nil, errors.New("worker: Config.Registry is required")
	}
	if err := validateNamespaces(cfg.Namespaces); err != nil {
		return nil, err
	}
	metrics, err := NewMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("worker: registering metrics: %w", err)
	}
	bus := NewBus()
	processor, err := NewProcessor(pool, bus, ProcessorConfig{
		WorkerID: cfg.WorkerID, Namespaces: cfg.Namespaces, Concurrency: cfg.Concurrency,
		VisibilityTimeout: cfg.VisibilityTimeout, PollInterval: cfg.PollInterval, ReadGather: cfg.ReadGather,
		LeaseMargin: cfg.LeaseMargin, Logger: cfg.Logger, Metrics: metrics,
	})
	if err != nil {
		return nil, err
	}
	w := &Worker{
		pool: pool, cfg: cfg, log: cfg.Logger, bus: bus, processor: processor,
		bridge:   NewHandlerBridge(bus, cfg.Registry, cfg.Logger),
		registry: &registration{pool: pool, cfg: cfg},
	}
	w.listener, err = wakeup.New(wakeup.Config{
		ConnConfig: pool.Config().ConnConfig.Copy(), Channels: w.channels(),
		OnNotify: w.onNotify, Logger: cfg.Logger,
	})
	return w, err
}

// channels are the queues' wake-up channels and the task-cancel channel.
func (w *Worker) channels() []string {
	channels := []string{dispatch.CancelChannel}
	for _, ns := range w.cfg.Namespaces {
		channels = append(channels, queue.Channel(dispatch.StepQueue(ns)))
	}
	return channels
}

func (w *Worker) onNotify(channel, payload string) {
	if channel != dispatch.CancelChannel {
		w.processor.WakeQueue(payload) // a send's payload is its queue's name
		return
	}
	if id, err := uuid.Parse(payload); err == nil {
		w.processor.CancelTask(id)
	}
}

// Run works until ctx ends, then stops reading, lets running steps finish
// within ShutdownGrace (handing back the rest), deregisters, and returns.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.registry.register(ctx); err != nil {
		return err
	}
	bridgeCtx, stopBridge := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { w.bridge.Run(bridgeCtx, w.cfg.Concurrency) })
	wg.Go(func() { _ = w.listener.Run(ctx) })
	wg.Go(func() { w.registry.heartbeat(ctx, w.log) })
	w.log.InfoContext(ctx, "worker running", "worker_id", w.cfg.WorkerID, "namespaces", w.cfg.Namespaces,
		"callables", len(w.cfg.Registry.Callables()), "concurrency", w.processor.cfg.Concurrency)
	w.processor.Run(ctx)

	w.log.Info("worker stopping: finishing the steps in flight", "steps", w.processor.InFlight(), "grace", w.cfg.ShutdownGrace)
	w.processor.Drain(w.cfg.ShutdownGrace)
	stopBridge()
	w.bus.Close()
	wg.Wait()
	w.registry.deregister(w.log) //nolint:contextcheck // runs after ctx ended, on purpose
	w.log.Info("worker stopped")
	return nil
}

// Ready reports whether the worker listens for notifications and reaches
// the database.
func (w *Worker) Ready(ctx context.Context) error {
	select {
	case <-w.listener.Ready():
	default:
		return errors.New("not listening for notifications yet")
	}
	return w.pool.Ping(ctx)
}

// validateNamespaces checks that every namespace is usable as a queue name.
func validateNamespaces(namespaces []string) error {
	if len(namespaces) == 0 {
		return errors.New("worker: at least one namespace is required (--namespaces)")
	}
	for _, ns := range namespaces {
		if err := queue.ValidateName(dispatch.StepQueue(ns)); err != nil {
			return fmt.Errorf("worker: namespace %q: %w", ns, err)
		}
	}
	return nil
}
