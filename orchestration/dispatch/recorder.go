package dispatch

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taskerops/tasker/internal/dbtx"
)

// maxRecordBatch caps how many outcomes one flush stores, so that one
// transaction never grows unbounded; the rest go in the next flush.
const maxRecordBatch = 128

// recordFlushTimeout bounds one flush. A flush stores the outcomes of many
// callers, so no caller's cancellation ends it.
const recordFlushTimeout = 30 * time.Second

// recorder stores outcomes by group commit. An outcome recorded while no
// flush runs is stored at once, by the caller's own goroutine (the leader),
// with recordSQL; outcomes recorded while a flush runs wait, and the next
// flush stores all of them (up to maxRecordBatch) in one transaction: one
// statement per step queue (recordBatchSQL), one commit and one NOTIFY for
// all. There is no wait window: at low load an outcome costs what it always
// did, and under load the commits are shared. When the leader's flush is done and more
// outcomes wait, a goroutine takes over and flushes until none is left, then
// ends: the recorder owns no goroutine while it is idle, and needs no Close.
type recorder struct {
	executor *Executor

	mu       sync.Mutex
	waiting  []*pendingOutcome
	flushing bool // a leader or the flushing goroutine is at work
}

// pendingOutcome is one outcome on its way to the database.
type pendingOutcome struct {
	claim  *Claim
	params outcomeParams
	// taken (guarded by recorder.mu) means a flush has the outcome: its
	// caller can no longer withdraw it.
	taken bool
	// done is closed when the flush that had the outcome is over; held and
	// err are then its result, or alone says that its caller must store it
	// on its own (the batch failed, or did not store it: its claim ended,
	// its step was locked, or the batch held another outcome of its step).
	done  chan struct{}
	held  bool
	err   error
	alone bool
}

// record stores one outcome and reports whether the claim was still held,
// as recordOutcome does: true means that the outcome, its result message
// and the deletion of the step message have committed.
func (r *recorder) record(ctx context.Context, claim *Claim, params outcomeParams) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p := &pendingOutcome{claim: claim, params: params, done: make(chan struct{})}
	r.mu.Lock()
	r.waiting = append(r.waiting, p)
	lead := !r.flushing
	r.flushing = true
	r.mu.Unlock()
	if lead {
		// The flush stores other callers' outcomes too: the caller's
		// cancellation must not end it (recordFlushTimeout bounds it).
		flushCtx := context.WithoutCancel(ctx)
		r.flushNext(flushCtx)
		r.mu.Lock()
		more := len(r.waiting) > 0
		r.flushing = more
		r.mu.Unlock()
		if more {
			go r.flushAll(flushCtx)
		}
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		if r.withdraw(p) {
			return false, ctx.Err()
		}
		<-p.done
	}
	if p.alone {
		return r.executor.recordOutcome(ctx, claim, params)
	}
	return p.held, p.err
}

// withdraw takes an outcome that no flush has yet out of the queue, and
// reports whether it did.
func (r *recorder) withdraw(p *pendingOutcome) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.taken {
		return false
	}
	for i, w := range r.waiting {
		if w == p {
			r.waiting = append(r.waiting[:i], r.waiting[i+1:]...)
			break
		}
	}
	return true
}

// flushAll flushes until no outcome waits, then marks the recorder idle.
func (r *recorder) flushAll(ctx context.Context) {
	for {
		r.mu.Lock()
		if len(r.waiting) == 0 {
			r.flushing = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.flushNext(ctx)
	}
}

// flushNext stores the outcomes waiting now (up to maxRecordBatch) and wakes
// their callers.
func (r *recorder) flushNext(ctx context.Context) {
	r.mu.Lock()
	n := min(len(r.waiting), maxRecordBatch)
	batch := make([]*pendingOutcome, n)
	copy(batch, r.waiting)
	r.waiting = append(r.waiting[:0], r.waiting[n:]...)
	for _, p := range batch {
		p.taken = true
	}
	r.mu.Unlock()
	if n == 0 {
		return
	}
	r.flush(ctx, batch)
	for _, p := range batch {
		close(p.done)
	}
}

// stepAttempt names one attempt of a step.
type stepAttempt struct {
	step    [16]byte
	attempt int32
}

// flush stores a batch in one transaction and sets each outcome's result.
// An outcome the transaction did not store (its claim ended, or its step
// was locked) is stored on its own by its caller (recordOutcome), after the
// transaction: that path waits for the lock and reports a lost claim. If the
// transaction fails, every outcome of the batch goes that way, so that one
// bad outcome costs the others nothing but time. A batch of one outcome is
// stored with recordSQL at once.
func (r *recorder) flush(ctx context.Context, batch []*pendingOutcome) {
	ctx, cancel := context.WithTimeout(ctx, recordFlushTimeout)
	defer cancel()
	if len(batch) == 1 {
		// One outcome: recordSQL, the statement made for it. It waits if
		// the step is locked, as it always did; the outcomes that arrive
		// meanwhile wait for the next flush.
		p := batch[0]
		p.held, p.err = r.executor.recordOutcome(ctx, p.claim, p.params)
		return
	}
	// One group per step queue, each step once: a second outcome of a step
	// in the batch (a misuse, or an old attempt's) is stored on its own
	// after this flush, when it finds the claim it names already ended.
	var queues []string
	groups := map[string][]*pendingOutcome{}
	seen := make(map[[16]byte]bool, len(batch))
	for _, p := range batch {
		if seen[p.params.StepUUID] {
			p.alone = true
			continue
		}
		seen[p.params.StepUUID] = true
		q := p.claim.Queue
		if _, ok := groups[q]; !ok {
			queues = append(queues, q)
		}
		groups[q] = append(groups[q], p)
	}
	var stored map[stepAttempt]bool
	var err error
	if len(queues) == 1 {
		// One statement is atomic: no BEGIN and COMMIT round trips.
		stored, err = r.storeGroup(ctx, r.executor.pool, queues[0], groups[queues[0]])
	} else {
		err = dbtx.WithTx(ctx, r.executor.pool, func(tx pgx.Tx) error {
			stored = map[stepAttempt]bool{}
			for _, q := range queues {
				s, err := r.storeGroup(ctx, tx, q, groups[q])
				if err != nil {
					return err
				}
				for k := range s {
					stored[k] = true
				}
			}
			return nil
		})
	}
	for _, q := range queues {
		for _, p := range groups[q] {
			switch {
			case err != nil:
				p.alone = true
			case stored[stepAttempt{step: p.params.StepUUID, attempt: p.params.Attempt}]:
				p.held = true
			default:
				// The claim ended, or another transaction had the step
				// locked: the outcome's own statement tells which.
				p.alone = true
			}
		}
	}
}

// querier runs a statement: the pool, or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// storeGroup runs recordBatchSQL for the outcomes of one step queue and
// returns the attempts whose outcomes it stored.
func (r *recorder) storeGroup(ctx context.Context, db querier, stepQueue string, group []*pendingOutcome) (map[stepAttempt]bool, error) {
	n := len(group)
	var (
		steps    = make([]pgtype.UUID, n)
		attempts = make([]int32, n)
		states   = make([]string, n)
		results  = make([]json.RawMessage, n)
		errs     = make([]json.RawMessage, n)
		reasons  = make([]string, n)
		messages = make([]json.RawMessage, n)
		msgIDs   = make([]int64, n)
	)
	for i, p := range group {
		steps[i] = pgtype.UUID{Bytes: p.params.StepUUID, Valid: true}
		attempts[i] = p.params.Attempt
		states[i] = p.params.ToState
		results[i] = p.params.Results
		errs[i] = p.params.Error
		reasons[i] = p.params.Reason
		messages[i] = p.params.Message
		msgIDs[i] = p.claim.MessageID
	}
	var (
		storedSteps    []pgtype.UUID
		storedAttempts []int32
		notified       int64
	)
	err := db.QueryRow(ctx, recordBatchSQL(stepQueue),
		steps, attempts, states, results, errs, reasons, messages, msgIDs, r.executor.cfg.WorkerID,
	).Scan(&storedSteps, &storedAttempts, &notified)
	if err != nil {
		return nil, err
	}
	stored := make(map[stepAttempt]bool, len(storedSteps))
	for i, s := range storedSteps {
		stored[stepAttempt{step: s.Bytes, attempt: storedAttempts[i]}] = true
	}
	return stored, nil
}
