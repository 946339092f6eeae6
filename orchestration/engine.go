// Package orchestration is tasker's engine: it registers workflow templates,
// creates tasks from them, decides which steps are ready, sends them to
// workers over PGMQ, processes the outcomes that come back (completion,
// retry with backoff, permanent failure), finalizes tasks, and recovers
// from lost workers. All state lives in PostgreSQL.
//
// Any number of engines may run against one database: every change to a
// task or its steps happens in a transaction holding the task's row lock,
// and every step change is conditional on the state it expects.
package orchestration

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/queue"
)

// Config configures an Engine. The zero value of every field means "use
// the default", applied in one place by withDefaults.
type Config struct {
	// ProcessID names this process in the transition history. Default:
	// "orchestrator@<hostname>:<pid>".
	ProcessID string
	// Logger receives structured logs. Default: slog.Default().
	Logger *slog.Logger
	// CreateBatchWait is how long, after a shared task-creation transaction
	// of several tasks, the next one waits for as many more creations to
	// arrive (see createBatcher): clients creating tasks one after another
	// then share transactions of all their tasks. Default 2ms; negative: no
	// wait.
	CreateBatchWait time.Duration
	// ResultBatchSize is how many result messages one round reads; the
	// successful ones are settled together in one transaction. Default 64.
	ResultBatchSize int
	// ResultWorkers is how many of the results that the batch transaction
	// did not settle (failures, duplicates, ...) are processed at once,
	// each in its own transaction; results of the same task are processed
	// one after another, in message order. Default 8.
	ResultWorkers int
	// ResultVisibility is how long a result message being processed stays
	// hidden from other orchestrators; if this process dies, another picks
	// the message up after it. Default 30s.
	ResultVisibility time.Duration
	// PollInterval is how often the loops look for work when no
	// notification arrives (the fallback for missed notifications).
	// Default 1s.
	PollInterval time.Duration
	// SweepInterval is how often the sweeper looks for due retries and
	// expired claims. Default 5s.
	SweepInterval time.Duration
	// LeaseGrace is how long after a claim's lease expired the sweeper
	// re-enqueues the step itself. Normally the step message reappears when
	// its visibility timeout ends and another worker takes the step over
	// sooner; the sweeper covers a message that is gone. Default 30s.
	LeaseGrace time.Duration
	// SweepBatch bounds how many tasks or steps one sweep handles. Default 256.
	SweepBatch int
	// RetryBackoffMin and RetryBackoffMax bound the pause after a loop
	// failed (e.g. the database is unreachable). Defaults 100ms and 10s.
	RetryBackoffMin, RetryBackoffMax time.Duration
	// Rand draws the jitter of retry delays, uniform in [0, 1). Default
	// math/rand/v2.Float64.
	Rand func() float64
}

func (c Config) withDefaults() Config {
	if c.ProcessID == "" {
		host, _ := os.Hostname()
		c.ProcessID = fmt.Sprintf("orchestrator@%s:%d", host, os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.CreateBatchWait == 0 {
		c.CreateBatchWait = 2 * time.Millisecond
	}
	if c.ResultBatchSize <= 0 {
		c.ResultBatchSize = 64
	}
	if c.ResultWorkers <= 0 {
		c.ResultWorkers = 8
	}
	if c.ResultVisibility <= 0 {
		c.ResultVisibility = 30 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = 5 * time.Second
	}
	if c.LeaseGrace <= 0 {
		c.LeaseGrace = 30 * time.Second
	}
	if c.SweepBatch <= 0 {
		c.SweepBatch = 256
	}
	if c.RetryBackoffMin <= 0 {
		c.RetryBackoffMin = 100 * time.Millisecond
	}
	if c.RetryBackoffMax <= 0 {
		c.RetryBackoffMax = 10 * time.Second
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// Engine is the orchestration engine over one database. Its methods are
// safe for concurrent use.
type Engine struct {
	pool      *pgxpool.Pool
	queries   *dbsqlc.Queries
	queue     *queue.Client
	templates *TemplateStore
	cfg       Config
	log       *slog.Logger
	// sweepWake wakes the sweeper loop when a retry this engine scheduled
	// becomes due, so that short retry delays are honoured promptly.
	sweepWake *timerSignal
	// creates lets concurrent CreateTask calls share transactions.
	creates createBatcher
	// resolved keeps the templates that task creations named.
	resolved templateCache
}

// NewEngine returns an Engine over pool, which must point at a database
// migrated to the latest schema.
func NewEngine(pool *pgxpool.Pool, cfg Config) *Engine {
	cfg = cfg.withDefaults()
	return &Engine{
		pool:      pool,
		queries:   dbsqlc.New(),
		queue:     queue.New(),
		templates: NewTemplateStore(pool),
		cfg:       cfg,
		log:       cfg.Logger,
		sweepWake: newTimerSignal(),
	}
}

// Templates returns the engine's template store.
func (e *Engine) Templates() *TemplateStore { return e.templates }

// ProcessID is the name this engine records in transitions.
func (e *Engine) ProcessID() string { return e.cfg.ProcessID }
