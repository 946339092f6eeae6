package orchestration

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// maxCreateBatch bounds how many task creations share one transaction.
const maxCreateBatch = 64

// createBatcher lets concurrent CreateTask calls share transactions (group
// commit): a commit, which waits for the disk, costs about as much for one
// task as for many. A call that finds no flush running starts one at once,
// so nothing waits when the engine is idle; calls that arrive while a flush
// runs wait, and the next flush takes all of them (up to maxCreateBatch)
// together. One flush runs at a time. The zero value is ready to use.
type createBatcher struct {
	mu       sync.Mutex
	waiting  []*createCall
	flushing bool
}

// createCall is one CreateTask call waiting for its task to be written.
type createCall struct {
	ctx  context.Context //nolint:containedctx // the caller's: a call whose caller gave up is dropped, and the flush stops when all did
	task *newTask
	// done receives exactly one answer; it is buffered, so a caller that
	// gave up never blocks the flush.
	done chan createAnswer
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
	call := &createCall{ctx: ctx, task: n, done: make(chan createAnswer, 1)}
	b := &e.creates
	b.mu.Lock()
	b.waiting = append(b.waiting, call)
	start := !b.flushing
	b.flushing = true
	b.mu.Unlock()
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
// is left.
func (e *Engine) flushCreates() {
	b := &e.creates
	for {
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
	}
}

// createTogether writes the tasks of batch in one transaction and answers
// every call. One call runs its statement on its own (a single statement
// commits by itself). Several are sent in one round trip as a pgx batch,
// which PostgreSQL runs as one implicit transaction, committed when the
// batch ends: every statement sees the rows of the ones before it, and an
// error in any rolls back all. The calls are sorted by identity, so that
// two transactions waiting for each other's identities (two engines, or a
// batch and a call on its own) always wait in the same order and cannot
// deadlock. Duplicates, a changed template or a missing root step are
// outcomes of one call, which write nothing and do not fail the rest.
func (e *Engine) createTogether(batch []*createCall) {
	ctx, release := flushContext(batch)
	defer release()
	if len(batch) == 1 {
		task, err := e.insertTask(ctx, e.pool, batch[0].task)
		batch[0].done <- createAnswer{task: task, err: err}
		return
	}
	slices.SortStableFunc(batch, func(a, b *createCall) int {
		return cmp.Compare(a.task.identity.hash, b.task.identity.hash)
	})
	statements := &pgx.Batch{}
	for _, call := range batch {
		sql, args := e.createArgs(call.task)
		statements.Queue(sql, args...)
	}
	results := e.pool.SendBatch(ctx, statements)
	answers := make([]createAnswer, len(batch))
	failed := false
	for i := range batch {
		answers[i].task, answers[i].err = readCreated(results.Query())
		if answers[i].err != nil && !isCreateOutcome(answers[i].err) {
			failed = true
		}
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

// isCreateOutcome reports whether err is an outcome of createSQLText that
// wrote nothing but left the transaction intact.
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
