package orchestration

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/orchestration/dispatch"
)

// maxCreateBatch bounds how many task creations share one transaction.
const maxCreateBatch = 64

// createBatcher lets concurrent CreateTask calls share transactions (group
// commit): a commit, which waits for the disk, costs about as much for one
// task as for many. A call that finds no flush running starts one at once,
// so nothing waits when the engine is idle; calls that arrive while a flush
// runs wait, and the next flush takes all of them (up to maxCreateBatch)
// together. One flush runs at a time.
//
// After a flush of several calls, the next one first gathers: it waits, up
// to Config.CreateBatchWait, until as many more calls wait as that flush
// answered. Clients that create tasks one after another (a loop of POST
// /v1/tasks, several of them at once) send their next task as soon as they
// have their answer; without the wait, the flush that starts a moment
// after the last answer takes only the calls that arrived during it, and
// those clients split into two halves that take turns, each flush half as
// large. A flush of one call does not gather, so a lone client never
// waits. The zero value is ready to use.
type createBatcher struct {
	mu       sync.Mutex
	waiting  []*createCall
	flushing bool
	// arrived receives a signal (without blocking, so several arrivals may
	// make one) when a call starts waiting; made on first use.
	arrived chan struct{}
}

// arrivals returns b.arrived, making it on first use. b.mu must be held.
func (b *createBatcher) arrivals() chan struct{} {
	if b.arrived == nil {
		b.arrived = make(chan struct{}, 1)
	}
	return b.arrived
}

// gather waits, up to wait, until answered more calls wait than wait now
// (at most maxCreateBatch in all), or returns at once when wait is not
// positive.
func (b *createBatcher) gather(answered int, wait time.Duration) {
	if wait <= 0 {
		return
	}
	b.mu.Lock()
	target := min(len(b.waiting)+answered, maxCreateBatch)
	arrived := b.arrivals()
	b.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		b.mu.Lock()
		n := len(b.waiting)
		b.mu.Unlock()
		if n >= target {
			return
		}
		select {
		case <-arrived:
		case <-timer.C:
			return
		}
	}
}

// createCall is one CreateTask call waiting for its task to be written.
type createCall struct {
	ctx  context.Context //nolint:containedctx // the caller's: a call whose caller gave up is dropped, and the flush stops when all did
	task *newTask
	// stepQueue is the queue of the task's steps: calls of one queue share
	// a statement (createSetSQLText).
	stepQueue string
	// done receives exactly one answer; it is buffered, so a caller that
	// gave up never blocks the flush.
	done chan createAnswer
}

// newCreateCall returns the call that creates n for a caller whose context
// is ctx.
func newCreateCall(ctx context.Context, n *newTask) *createCall {
	return &createCall{ctx: ctx, task: n, stepQueue: dispatch.StepQueue(n.tmpl.NamespaceName), done: make(chan createAnswer, 1)}
}

// createAnswer is what a flush tells a caller.
type createAnswer struct {
	task *Task
	err  error
	// alone means the shared transaction failed and nothing of it was kept
	// (or, if only the reply was lost, the task is found again as the
	// caller's own): the caller creates its task on its own, so that it gets
	// its own error.
	alone bool
}

// createBatched writes n through the engine's createBatcher and returns
// what insertTask returns for it. If ctx ends first, it returns ctx's error
// at once; the task is then still created if its statement was already
// sent, and not otherwise.
func (e *Engine) createBatched(ctx context.Context, n *newTask) (*Task, error) {
	call := newCreateCall(ctx, n)
	b := &e.creates
	b.mu.Lock()
	b.waiting = append(b.waiting, call)
	start := !b.flushing
	b.flushing = true
	arrived := b.arrivals()
	b.mu.Unlock()
	select {
	case arrived <- struct{}{}:
	default: // a signal is pending already
	}
	if start {
		go e.flushCreates() //nolint:contextcheck // the flush serves many callers, on a context of its own (flushContext)
	}
	select {
	case answer := <-call.done:
		if answer.alone {
			return e.insertTask(ctx, e.pool, n)
		}
		return answer.task, answer.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// flushCreates writes the waiting creations, a batch at a time, until none
// is left; after a batch of several, it gathers the next (createBatcher).
func (e *Engine) flushCreates() {
	b := &e.creates
	answered := 0
	for {
		if answered > 1 {
			b.gather(answered, e.cfg.CreateBatchWait)
		}
		b.mu.Lock()
		// Calls whose caller gave up are dropped before their statement is
		// sent.
		var batch []*createCall
		taken := 0
		for _, call := range b.waiting {
			if len(batch) == maxCreateBatch {
				break
			}
			taken++
			if call.ctx.Err() == nil {
				batch = append(batch, call)
			}
		}
		b.waiting = slices.Delete(b.waiting, 0, taken)
		if len(batch) == 0 && len(b.waiting) == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		if len(batch) > 0 {
			e.createTogether(batch)
		}
		answered = len(batch)
	}
}

// createTogether writes the tasks of batch in one transaction and answers
// every call. One call runs its statement on its own (a single statement
// commits by itself). Several are sent in one round trip as a pgx batch of
// one createSetSQLText statement per step queue, which PostgreSQL runs as
// one implicit transaction, committed when the batch ends: every statement
// sees the rows of the ones before it, and an error in any rolls back all.
// The calls are sorted by step queue, then by identity, and each statement
// inserts its tasks in that order. Two transactions only wait for each
// other's identities when they create tasks of the same identity, which
// are of the same namespace (taskIdentity hashes it in) and so of the same
// step queue: they always wait in the same order (two engines, or a batch
// and a call on its own) and cannot deadlock. Duplicates, a changed
// template or a missing root step are outcomes of one call, which write
// nothing and do not fail the rest.
func (e *Engine) createTogether(batch []*createCall) {
	ctx, release := flushContext(batch)
	defer release()
	if len(batch) == 1 {
		task, err := e.insertTask(ctx, e.pool, batch[0].task)
		batch[0].done <- createAnswer{task: task, err: err}
		return
	}
	slices.SortStableFunc(batch, func(a, b *createCall) int {
		return cmp.Or(cmp.Compare(a.stepQueue, b.stepQueue), cmp.Compare(a.task.identity.hash, b.task.identity.hash))
	})
	groups := byStepQueue(batch)
	statements := &pgx.Batch{}
	for _, group := range groups {
		sql, args := e.createSetArgs(group[0].stepQueue, group)
		statements.Queue(sql, args...)
	}
	results := e.pool.SendBatch(ctx, statements)
	answers := make([]createAnswer, len(batch))
	failed := false
	start := 0
	for _, group := range groups {
		rows, err := results.Query()
		if err := readCreatedSet(rows, err, answers[start:start+len(group)]); err != nil {
			failed = true
		}
		start += len(group)
	}
	// Close reads up to the end of the batch, when its transaction has
	// committed (and is durable) or failed.
	if err := results.Close(); err != nil || failed {
		for _, call := range batch {
			call.done <- createAnswer{alone: true}
		}
		return
	}
	for i, call := range batch {
		call.done <- answers[i]
	}
}

// byStepQueue splits batch, sorted by step queue, into the runs of calls
// whose steps go on the same queue, in order.
func byStepQueue(batch []*createCall) [][]*createCall {
	var groups [][]*createCall
	for len(batch) > 0 {
		n := 1
		for n < len(batch) && batch[n].stepQueue == batch[0].stepQueue {
			n++
		}
		groups = append(groups, batch[:n])
		batch = batch[n:]
	}
	return groups
}

// isCreateOutcome reports whether err is an outcome of createSQLText or
// createSetSQLText that wrote nothing for its task but left the transaction
// intact.
func isCreateOutcome(err error) bool {
	return err == errDuplicateIdentity || err == errTemplateChanged || err == errNoRootStep //nolint:errorlint // readCreated returns them unwrapped
}

// flushContext returns the context of a flush: it keeps running while any
// of the batch's callers waits, and is cancelled once all of them gave up.
// release must be called when the flush ends.
func flushContext(batch []*createCall) (ctx context.Context, release func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var waiting atomic.Int64
	waiting.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, call := range batch {
		stops[i] = context.AfterFunc(call.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
