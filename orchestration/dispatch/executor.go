package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/internal/dbtx"
	"github.com/taskerops/tasker/internal/jsonb"
	"github.com/taskerops/tasker/orchestration/queue"
)

// Errors a worker sees from the Executor. Both mean "drop this message and
// go on": the Executor has already deleted or parked the message.
var (
	// ErrNotClaimable means the step cannot run now: it finished, was
	// cancelled, or another worker's live claim holds it.
	ErrNotClaimable = errors.New("step not claimable")
	// ErrClaimLost means the worker's claim ended before it recorded the
	// outcome (the task was cancelled, or the claim expired and another
	// worker took the step over); the outcome was discarded.
	ErrClaimLost = errors.New("claim lost")
)

// ExecutorConfig configures an Executor.
type ExecutorConfig struct {
	// WorkerID names this worker process in claims and transitions.
	// Required.
	WorkerID string
	// LeaseMargin is added to a step's timeout to make its claim lease: a
	// worker that has not recorded an outcome by then is presumed dead and
	// the step may run elsewhere. Default 10s.
	LeaseMargin time.Duration
}

func (c ExecutorConfig) withDefaults() ExecutorConfig {
	if c.LeaseMargin <= 0 {
		c.LeaseMargin = 10 * time.Second
	}
	return c
}

// Executor performs the worker's side of a step against the database.
type Executor struct {
	pool     *pgxpool.Pool
	queries  *dbsqlc.Queries
	queue    *queue.Client
	cfg      ExecutorConfig
	recorder recorder
}

// NewExecutor returns an Executor over pool.
func NewExecutor(pool *pgxpool.Pool, cfg ExecutorConfig) (*Executor, error) {
	if cfg.WorkerID == "" {
		return nil, errors.New("dispatch: ExecutorConfig.WorkerID is required")
	}
	e := &Executor{pool: pool, queries: dbsqlc.New(), queue: queue.New(), cfg: cfg.withDefaults()}
	e.recorder.executor = e
	return e, nil
}

// Claim is one attempt of a step held by this worker.
type Claim struct {
	// Queue and MessageID identify the step message this claim came from.
	Queue     string
	MessageID int64
	// Message is the decoded step message.
	Message StepMessage
	// Step is the claimed step's definition snapshot and attempt number,
	// with its task and ancestors' results (see Input).
	Step dbsqlc.ClaimAndLoadStepRow
	// Input is what the handler needs besides the step, read by the claim's
	// own statement.
	Input *StepInput
}

// Timeout is the step's own time limit for one attempt.
func (c *Claim) Timeout() time.Duration {
	return time.Duration(c.Step.TimeoutSeconds) * time.Second
}

// Claim claims the step that msg (read from queueName) points at. A
// malformed message is archived with the reason and returned as an error
// wrapping ErrMalformed. A message whose step cannot run is deleted (or, if
// a live claim holds the step, hidden until that claim's lease ends) and
// ErrNotClaimable is returned. It is ClaimBatch with one message; a worker
// that read several messages claims them together with ClaimBatch.
func (e *Executor) Claim(ctx context.Context, queueName string, msg queue.Message) (*Claim, error) {
	result := e.ClaimBatch(ctx, queueName, []queue.Message{msg})[0]
	return result.Claim, result.Err
}

// dropUnclaimable decides what to do with a message whose step could not
// be claimed.
func (e *Executor) dropUnclaimable(ctx context.Context, queueName string, msg queue.Message, stepMsg StepMessage) error {
	step, err := e.queries.GetStep(ctx, e.pool, stepMsg.StepUUID)
	if errors.Is(err, pgx.ErrNoRows) {
		return e.deadLetter(ctx, queueName, msg, fmt.Sprintf("unknown step %s", stepMsg.StepUUID))
	}
	if err != nil {
		return fmt.Errorf("dispatch: loading unclaimable step %s: %w", stepMsg.StepUUID, err)
	}
	if step.TaskUUID != stepMsg.TaskUUID {
		return e.deadLetter(ctx, queueName, msg, fmt.Sprintf("step %s belongs to task %s, the message says task %s", step.StepUUID, step.TaskUUID, stepMsg.TaskUUID))
	}
	if step.State == "in_progress" && step.ClaimExpiresAt != nil && time.Until(*step.ClaimExpiresAt) > 0 {
		// Another worker holds a live claim: hide the message until the
		// lease ends, when it can take over if that worker died. (An
		// expired claim without attempts left is the sweeper's to fail;
		// the message is not needed for that.)
		hideFor := time.Until(*step.ClaimExpiresAt) + time.Second
		if _, err := e.queue.SetVisibility(ctx, e.pool, queueName, msg.ID, hideFor); err != nil {
			return fmt.Errorf("dispatch: hiding message %d: %w", msg.ID, err)
		}
		return fmt.Errorf("%w: step %s is held by %s until %s", ErrNotClaimable, step.StepUUID, deref(step.ClaimedBy), step.ClaimExpiresAt.Format(time.RFC3339))
	}
	if _, err := e.queue.Delete(ctx, e.pool, queueName, msg.ID); err != nil {
		return fmt.Errorf("dispatch: deleting stale message %d: %w", msg.ID, err)
	}
	return fmt.Errorf("%w: step %s is %s", ErrNotClaimable, step.StepUUID, step.State)
}

// StepInput is what a handler needs besides the claim: its task and the
// results of every ancestor step by name.
type StepInput struct {
	Task      TaskInfo
	Ancestors map[string]json.RawMessage
}

// TaskInfo is the task of a claimed step.
type TaskInfo struct {
	TaskUUID      uuid.UUID
	NamespaceName string
	Name          string
	Version       string
	Context       json.RawMessage
	CorrelationID uuid.UUID
	State         string
}

// stepInput takes the task and the ancestors' results out of a claim's row.
func stepInput(row dbsqlc.ClaimAndLoadStepRow) (*StepInput, error) {
	input := &StepInput{Task: TaskInfo{
		TaskUUID: row.TaskUUID, NamespaceName: row.NamespaceName, Name: row.TaskName, Version: row.Version,
		Context: row.Context, CorrelationID: row.CorrelationID, State: row.TaskState,
	}}
	if err := json.Unmarshal(row.AncestorResults, &input.Ancestors); err != nil {
		return nil, fmt.Errorf("dispatch: decoding ancestor results of %s: %w", row.StepUUID, err)
	}
	return input, nil
}

// ExtendLease pushes the claim's lease out by the step's timeout plus the
// margin, for handlers that legitimately run long. It returns ErrClaimLost
// when the claim is no longer held.
func (e *Executor) ExtendLease(ctx context.Context, claim *Claim) (time.Time, error) {
	until, err := e.queries.ExtendClaim(ctx, e.pool, dbsqlc.ExtendClaimParams{
		LeaseSeconds: claim.Timeout().Seconds() + e.cfg.LeaseMargin.Seconds(),
		StepUUID:     claim.Step.StepUUID,
		WorkerID:     e.cfg.WorkerID,
		Attempt:      claim.Step.Attempts,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, ErrClaimLost
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("dispatch: extending lease of %s: %w", claim.Step.StepUUID, err)
	}
	return until, nil
}

// Record stores the outcome of the claimed attempt, hands the step to the
// orchestrator (a ResultMessage plus NOTIFY) and deletes the step message,
// all in one statement: nothing is acknowledged before the outcome is
// durable. It returns ErrClaimLost (after deleting the message, unless
// another worker now runs from it) when the claim ended before the outcome
// could be stored. Call it once per claim.
//
// Outcomes recorded at the same time are stored together, in one
// transaction (a group commit, see recorder): Record returns when the
// transaction that holds its outcome has committed. An outcome recorded
// while no other is being stored goes at once.
func (e *Executor) Record(ctx context.Context, claim *Claim, outcome Outcome) error {
	params, err := recordParams(e.cfg.WorkerID, claim, outcome)
	if err != nil {
		return err
	}
	held, err := e.recorder.record(ctx, claim, params)
	if err == nil && !held {
		err = dbtx.WithTx(ctx, e.pool, func(tx pgx.Tx) error { return e.dropLostMessage(ctx, tx, claim) })
	}
	if err != nil {
		return fmt.Errorf("dispatch: recording outcome of step %s: %w", claim.Step.StepUUID, err)
	}
	if !held {
		return fmt.Errorf("%w: step %s attempt %d", ErrClaimLost, claim.Step.StepUUID, claim.Step.Attempts)
	}
	return nil
}

// dropLostMessage deletes the step message of a lost claim, unless another
// worker has taken the step over: that worker runs from the same message,
// which must come back if it dies too.
func (e *Executor) dropLostMessage(ctx context.Context, tx pgx.Tx, claim *Claim) error {
	step, err := e.queries.GetStep(ctx, tx, claim.Step.StepUUID)
	if err != nil {
		return fmt.Errorf("loading step after a lost claim: %w", err)
	}
	if step.State == "in_progress" {
		return nil
	}
	if _, err := e.queue.Delete(ctx, tx, claim.Queue, claim.MessageID); err != nil {
		return fmt.Errorf("deleting step message: %w", err)
	}
	return nil
}

// recordParams builds the arguments of recordSQL for an outcome, the
// result message included.
func recordParams(workerID string, claim *Claim, outcome Outcome) (outcomeParams, error) {
	params := outcomeParams{
		StepUUID: claim.Step.StepUUID,
		WorkerID: workerID,
		Attempt:  claim.Step.Attempts,
	}
	if outcome.Succeeded() {
		result := outcome.Result
		if len(result) == 0 {
			result = json.RawMessage("null")
		}
		if err := jsonb.Check(result); err != nil {
			// A result the database cannot store fails the step for good:
			// running the handler again would produce the same result.
			outcome = Outcome{Error: &StepError{Code: "INVALID_RESULT", Message: "the handler's result cannot be stored: " + err.Error()}}
		} else {
			params.ToState, params.Results, params.Reason = "enqueued_for_orchestration", result, "handler succeeded"
		}
	}
	if !outcome.Succeeded() {
		errJSON, err := json.Marshal(storableError(outcome.Error))
		if err != nil {
			return params, fmt.Errorf("dispatch: encoding error of step %s: %w", claim.Step.StepUUID, err)
		}
		params.ToState, params.Error = "enqueued_as_error_for_orchestration", errJSON
		params.Reason = "handler failed: " + outcome.Error.Code
	}
	message, err := json.Marshal(ResultMessage{
		TaskUUID: claim.Step.TaskUUID,
		StepUUID: claim.Step.StepUUID,
		Attempt:  int(claim.Step.Attempts),
		Success:  outcome.Succeeded(),
	})
	if err != nil {
		return params, fmt.Errorf("dispatch: encoding the result message of step %s: %w", claim.Step.StepUUID, err)
	}
	params.Message = message
	return params, nil
}

// storableError returns the error with NUL characters replaced and a
// context that the database cannot store dropped (and said so).
func storableError(e *StepError) *StepError {
	clean := *e
	clean.Code = strings.ReplaceAll(e.Code, "\x00", "\uFFFD")
	clean.Message = strings.ReplaceAll(e.Message, "\x00", "\uFFFD")
	if len(e.Context) > 0 {
		if err := jsonb.Check(e.Context); err != nil {
			clean.Context = nil
			clean.Message += " (error context dropped: " + err.Error() + ")"
		}
	}
	return &clean
}

// deadLetter archives a message that cannot be used and records why, in
// one transaction, and returns an error wrapping ErrMalformed.
func (e *Executor) deadLetter(ctx context.Context, queueName string, msg queue.Message, reason string) error {
	err := ArchiveWithReason(ctx, e.pool, e.queue, queueName, msg, reason, e.cfg.WorkerID)
	if err != nil {
		return fmt.Errorf("dispatch: archiving message %d: %w", msg.ID, err)
	}
	return fmt.Errorf("%w: message %d on %s archived: %s", ErrMalformed, msg.ID, queueName, reason)
}

// ArchiveWithReason moves a message to the queue's archive and records the
// reason in tasker.dead_letters, in one transaction.
func ArchiveWithReason(ctx context.Context, pool *pgxpool.Pool, q *queue.Client, queueName string, msg queue.Message, reason, actor string) error {
	queries := dbsqlc.New()
	body := msg.Body
	if !json.Valid(body) {
		body = nil
	}
	return dbtx.WithTx(ctx, pool, func(tx pgx.Tx) error {
		if err := queries.InsertDeadLetter(ctx, tx, dbsqlc.InsertDeadLetterParams{
			QueueName: queueName, MsgID: msg.ID, Message: body, Reason: reason, Actor: actor,
		}); err != nil {
			return err
		}
		_, err := q.Archive(ctx, tx, queueName, msg.ID)
		return err
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Release hands a claimed step back without an outcome, for a worker that
// shuts down before the handler finished: the step returns to enqueued (the
// attempt does not count) and its message becomes visible at once, in one
// transaction. It returns ErrClaimLost when the claim had already ended.
func (e *Executor) Release(ctx context.Context, claim *Claim) error {
	lost := false
	err := dbtx.WithTx(ctx, e.pool, func(tx pgx.Tx) error {
		n, err := e.queries.ReleaseClaim(ctx, tx, dbsqlc.ReleaseClaimParams{
			StepUUID: claim.Step.StepUUID, WorkerID: e.cfg.WorkerID, Attempt: claim.Step.Attempts,
		})
		if err != nil {
			return err
		}
		if n == 0 {
			lost = true
			return nil
		}
		_, err = e.queue.SetVisibility(ctx, tx, claim.Queue, claim.MessageID, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("dispatch: releasing step %s: %w", claim.Step.StepUUID, err)
	}
	if lost {
		return ErrClaimLost
	}
	return nil
}
