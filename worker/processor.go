package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
)

// Causes with which a running step's context is cancelled.
var (
	errTaskCancelled = errors.New("the task was cancelled")
	errClaimLost     = errors.New("the worker lost its claim on the step")
	errShutdown      = errors.New("the worker is shutting down")
	errStepTimeout   = errors.New("the step ran past its timeout")
)

// ProcessorConfig configures a Processor. Zero values mean the defaults,
// applied in withDefaults.
type ProcessorConfig struct {
	// WorkerID names this worker in claims and transitions. Required.
	WorkerID string
	// Namespaces are the workflow namespaces whose queues this worker
	// serves. Required.
	Namespaces []string
	// Concurrency bounds the steps in flight in this process. Default 16.
	Concurrency int
	// VisibilityTimeout hides a read message from other workers while this
	// one claims it. Default 30s.
	VisibilityTimeout time.Duration
	// PollInterval is how often the queues are read when no notification
	// arrives. Default 1s.
	PollInterval time.Duration
	// ReadGather is how long the reading loop waits, once woken, before it
	// reads, when its last round read at least gatherAfter messages: steps
	// then arrive faster than the loop reads them, and the wait lets the
	// next read take those of several enqueuing commits in one batch (one
	// read and one claim statement for all of them). Default 4ms; negative
	// turns it off.
	ReadGather time.Duration
	// LeaseMargin is added to a step's timeout for its claim lease.
	// Default 10s.
	LeaseMargin time.Duration
	// AbandonAfter is how long past its timeout a handler that ignores its
	// context may run before the worker records a STEP_TIMEOUT for it
	// without waiting. Default 5s.
	AbandonAfter time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, receives the step metrics.
	Metrics *Metrics
}

func (c ProcessorConfig) withDefaults() ProcessorConfig {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.VisibilityTimeout <= 0 {
		c.VisibilityTimeout = 30 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.ReadGather == 0 {
		c.ReadGather = 4 * time.Millisecond
	}
	if c.LeaseMargin <= 0 {
		c.LeaseMargin = 10 * time.Second
	}
	if c.AbandonAfter <= 0 {
		c.AbandonAfter = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Processor reads step messages from the namespace queues and carries each
// step through claim, hydration, execution on the bus, and recording.
type Processor struct {
	pool     *pgxpool.Pool
	executor *dispatch.Executor
	queue    *queue.Client
	bus      *Bus
	cfg      ProcessorConfig
	log      *slog.Logger

	slots    chan struct{}
	wake     chan struct{}
	due      dueQueues
	inflight sync.WaitGroup
	waiters  sync.Map // event id → chan StepExecutionCompletionEvent
	running  runningSteps

	// stepsCtx outlives Run: in-flight steps keep it until Drain cancels it.
	stepsCtx    context.Context //nolint:containedctx // the lifetime of in-flight steps, ended by Drain
	cancelSteps context.CancelCauseFunc
	// stopRouting ends the completion subscription; Drain calls it once no
	// step waits for a completion any more.
	stopRouting func()
}

// NewProcessor returns a Processor publishing on bus.
func NewProcessor(pool *pgxpool.Pool, bus *Bus, cfg ProcessorConfig) (*Processor, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Namespaces) == 0 {
		return nil, errors.New("worker: at least one namespace is required")
	}
	executor, err := dispatch.NewExecutor(pool, dispatch.ExecutorConfig{WorkerID: cfg.WorkerID, LeaseMargin: cfg.LeaseMargin})
	if err != nil {
		return nil, err
	}
	stepsCtx, cancel := context.WithCancelCause(context.Background())
	p := &Processor{
		pool: pool, executor: executor, queue: queue.New(), bus: bus, cfg: cfg, log: cfg.Logger,
		slots: make(chan struct{}, cfg.Concurrency), wake: make(chan struct{}, 1),
		running:  runningSteps{byTask: map[uuid.UUID]map[uuid.UUID]context.CancelCauseFunc{}},
		stepsCtx: stepsCtx, cancelSteps: cancel,
	}
	completions, unsubscribe := bus.Completions.Subscribe(cfg.Concurrency)
	p.stopRouting = unsubscribe
	go p.routeCompletions(completions)
	return p, nil
}

// Wake makes the processor read all its queues now.
func (p *Processor) Wake() {
	p.due.markAll()
	p.signal()
}

// WakeQueue makes the processor read one of its queues now: a notification
// said it has new messages.
func (p *Processor) WakeQueue(queueName string) {
	p.due.mark(queueName)
	p.signal()
}

func (p *Processor) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// CancelTask cancels the contexts of the running steps of a task.
func (p *Processor) CancelTask(taskUUID uuid.UUID) { p.running.cancelTask(taskUUID) }

// InFlight counts the steps this processor is running.
func (p *Processor) InFlight() int { return len(p.slots) }

// gatherAfter is how many messages a round of reads must have taken for
// the next round to wait ReadGather first. A burst of tasks fills reads with
// dozens of messages; one task of the sample workflows never has more than
// four steps ready at once, so a worker serving tasks one at a time reads
// at once, as it always did.
const gatherAfter = 8

// Run reads and dispatches steps until ctx ends. It then stops reading;
// steps already in flight go on until Drain, which must follow.
//
// A notification makes it read the queue it names; every PollInterval it
// reads them all (the fallback for lost notifications). A queue that may
// hold more than a read took is read again at once, or, when every slot is
// taken, as soon as a step finishes. After a round that read at least
// gatherAfter messages, the next round waits ReadGather before it reads.
func (p *Processor) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	p.due.markAll()
	busy := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-timer.C:
			p.due.markAll()
			timer.Reset(p.cfg.PollInterval)
		}
		if busy && p.cfg.ReadGather > 0 && !sleep(ctx, p.cfg.ReadGather) {
			return
		}
		again, read := p.read(ctx, p.due.take(p.cfg.Namespaces))
		busy = read >= gatherAfter
		for _, ns := range again {
			p.due.mark(dispatch.StepQueue(ns))
		}
		if p.due.pending() {
			// A queue may hold more: read it again as soon as a slot is
			// free. Waiting first, then looking, misses no slot freed in
			// between.
			p.due.waitForSlot()
			if len(p.slots) < cap(p.slots) {
				p.signal()
			}
		}
	}
}

// sleep waits d, or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// read reads from the given namespaces' queues as many messages as there
// are free slots, and starts each. It returns the namespaces to read again
// soon: those whose read filled every free slot, and those it could not
// read because no slot was free; and how many messages it read.
func (p *Processor) read(ctx context.Context, namespaces []string) (again []string, read int) {
	for i, ns := range namespaces {
		free := cap(p.slots) - len(p.slots)
		if free == 0 || ctx.Err() != nil {
			p.due.waitForSlot()
			return append(again, namespaces[i:]...), read
		}
		queueName := dispatch.StepQueue(ns)
		msgs, err := p.queue.Read(ctx, p.pool, queueName, p.cfg.VisibilityTimeout, free)
		if err != nil {
			if ctx.Err() == nil {
				p.log.ErrorContext(ctx, "reading the step queue failed", "queue", queueName, "error", err)
			}
			continue
		}
		read += len(msgs)
		if len(msgs) == free {
			again = append(again, ns)
		}
		if len(msgs) == 0 {
			continue
		}
		for range msgs {
			p.slots <- struct{}{}
		}
		p.inflight.Go(func() { //nolint:contextcheck // steps live on stepsCtx, not the reading loop's ctx
			p.claimAndRun(queueName, ns, msgs)
		})
	}
	return again, read
}

// claimAndRun claims the steps of messages read together, in one statement
// (dispatch.Executor.ClaimBatch), and runs each claimed step in its own
// goroutine. Each message holds a slot; a message whose step was not claimed
// frees its slot at once.
func (p *Processor) claimAndRun(queueName, namespace string, msgs []queue.Message) {
	ctx := p.stepsCtx
	for i, result := range p.executor.ClaimBatch(ctx, queueName, msgs) {
		switch {
		case errors.Is(result.Err, dispatch.ErrNotClaimable):
			p.log.DebugContext(ctx, "skipping a step message", "queue", queueName, "msg_id", msgs[i].ID, "reason", result.Err.Error())
			p.releaseSlot()
		case result.Err != nil:
			p.log.WarnContext(ctx, "could not claim a step", "queue", queueName, "msg_id", msgs[i].ID, "error", result.Err)
			p.releaseSlot()
		default:
			p.inflight.Go(func() {
				defer p.releaseSlot()
				p.runStep(namespace, msgs[i], result.Claim)
			})
		}
	}
}

// releaseSlot frees a step's slot and, when a read was cut short for want
// of one, wakes the reading loop.
func (p *Processor) releaseSlot() {
	<-p.slots
	if p.due.slotFreed() {
		p.signal()
	}
}

// dueQueues are the queues the reading loop reads at its next round.
type dueQueues struct {
	mu       sync.Mutex
	all      bool
	queues   map[string]bool
	starving bool // a read stopped because every slot was taken
}

func (d *dueQueues) mark(queueName string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queues == nil {
		d.queues = map[string]bool{}
	}
	d.queues[queueName] = true
}

func (d *dueQueues) markAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all = true
}

func (d *dueQueues) pending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.all || len(d.queues) > 0
}

// take returns the due namespaces, in the order of namespaces, and clears
// them.
func (d *dueQueues) take(namespaces []string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var due []string
	for _, ns := range namespaces {
		if d.all || d.queues[dispatch.StepQueue(ns)] {
			due = append(due, ns)
		}
	}
	d.all = false
	clear(d.queues)
	return due
}

func (d *dueQueues) waitForSlot() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.starving = true
}

// slotFreed reports whether the loop waits for a free slot, and stops
// waiting.
func (d *dueQueues) slotFreed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	was := d.starving
	d.starving = false
	return was
}

// routeCompletions hands each completion to the step waiting for it.
func (p *Processor) routeCompletions(completions <-chan StepExecutionCompletionEvent) {
	for c := range completions {
		if w, ok := p.waiters.LoadAndDelete(c.EventID); ok {
			w.(chan StepExecutionCompletionEvent) <- c //nolint:forcetypeassert // only this type is stored
		}
	}
}

// Drain waits up to grace for the steps in flight to finish. Steps still
// running then are cancelled and handed back (their attempt does not
// count), and Drain waits for that too.
func (p *Processor) Drain(grace time.Duration) {
	done := make(chan struct{})
	go func() {
		p.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		p.log.Warn("steps still running at the end of the grace period; handing them back", "steps", p.InFlight())
		p.cancelSteps(errShutdown)
		<-done
	}
	p.cancelSteps(errShutdown)
	p.stopRouting()
}

// runningSteps tracks the cancel functions of running steps by task.
type runningSteps struct {
	mu     sync.Mutex
	byTask map[uuid.UUID]map[uuid.UUID]context.CancelCauseFunc
}

func (r *runningSteps) add(task, step uuid.UUID, cancel context.CancelCauseFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byTask[task] == nil {
		r.byTask[task] = map[uuid.UUID]context.CancelCauseFunc{}
	}
	r.byTask[task][step] = cancel
}

func (r *runningSteps) remove(task, step uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byTask[task], step)
	if len(r.byTask[task]) == 0 {
		delete(r.byTask, task)
	}
}

func (r *runningSteps) cancelTask(task uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cancel := range r.byTask[task] {
		cancel(errTaskCancelled)
	}
}
