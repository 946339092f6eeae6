package orchestration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/internal/dbtx"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

// SweepReport says what one sweep did.
type SweepReport struct {
	// RetriesEnqueued counts steps whose retry delay had elapsed.
	RetriesEnqueued int
	// ClaimsRequeued counts steps whose worker's lease had expired and that
	// were put back on their queue.
	ClaimsRequeued int
	// ClaimsFailed counts steps whose lease expired on their last attempt.
	ClaimsFailed int
}

// Sweep runs one round of the fallback sweeper: it enqueues the steps whose
// retry time has come, and recovers steps whose worker's claim lease
// expired more than LeaseGrace ago (re-enqueued, or failed when that was
// their last attempt). Tasks locked by another orchestrator are skipped
// and picked up by a later sweep.
func (e *Engine) Sweep(ctx context.Context) (SweepReport, error) {
	var report SweepReport
	retried, err := e.sweepRetries(ctx)
	report.RetriesEnqueued = retried
	if err != nil {
		return report, err
	}
	report.ClaimsRequeued, report.ClaimsFailed, err = e.sweepExpiredClaims(ctx)
	return report, err
}

func (e *Engine) sweepRetries(ctx context.Context) (int, error) {
	tasks, err := e.queries.ListDueRetryTasks(ctx, e.pool, int32(e.cfg.SweepBatch))
	if err != nil {
		return 0, fmt.Errorf("listing due retries: %w", err)
	}
	total := 0
	for _, taskUUID := range tasks {
		var n int
		err := dbtx.WithTx(ctx, e.pool, func(tx pgx.Tx) error {
			var err error
			n, err = e.enqueueDueRetries(ctx, tx, taskUUID)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("enqueuing due retries of task %s: %w", taskUUID, err)
		}
		total += n
	}
	return total, nil
}

// enqueueDueRetries enqueues a task's due retries under its lock.
func (e *Engine) enqueueDueRetries(ctx context.Context, tx pgx.Tx, taskUUID uuid.UUID) (int, error) {
	task, err := e.queries.TryLockTask(ctx, tx, taskUUID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil // another orchestrator holds it
	}
	if err != nil {
		return 0, err
	}
	rows, err := e.queries.EnqueueDueRetrySteps(ctx, tx, dbsqlc.EnqueueDueRetryStepsParams{TaskUUID: taskUUID, Actor: e.cfg.ProcessID})
	if err != nil {
		return 0, err
	}
	steps := make([]stepRef, len(rows))
	for i, r := range rows {
		steps[i] = stepRef{uuid: r.StepUUID, name: r.Name}
	}
	if err := e.sendSteps(ctx, tx, refOf(task), steps); err != nil {
		return 0, err
	}
	return len(steps), e.evaluateTask(ctx, tx, task, "retry delay elapsed")
}

func (e *Engine) sweepExpiredClaims(ctx context.Context) (requeued, failed int, err error) {
	expired, err := e.queries.ListExpiredClaims(ctx, e.pool, dbsqlc.ListExpiredClaimsParams{
		GraceSeconds: e.cfg.LeaseGrace.Seconds(), MaxSteps: int32(e.cfg.SweepBatch),
	})
	if err != nil {
		return 0, 0, fmt.Errorf("listing expired claims: %w", err)
	}
	for _, claim := range expired {
		var outcome StepState
		err := dbtx.WithTx(ctx, e.pool, func(tx pgx.Tx) error {
			var err error
			outcome, err = e.recoverClaim(ctx, tx, claim.TaskUUID, claim.StepUUID)
			return err
		})
		if err != nil {
			return requeued, failed, fmt.Errorf("recovering expired claim of step %s: %w", claim.StepUUID, err)
		}
		switch outcome {
		case StepEnqueued:
			requeued++
		case StepError:
			failed++
		}
	}
	return requeued, failed, nil
}

// leaseExpiredError is stored on a step whose last attempt's worker died.
var leaseExpiredError = mustJSON(dispatch.StepError{
	Code:    "LEASE_EXPIRED",
	Message: "the worker running the last attempt stopped renewing its claim (it died or lost the database)",
})

// recoverClaim re-enqueues or fails one step with an expired claim, under
// its task's lock. It returns the step's new state, or "" when the step
// had moved on or the task is locked elsewhere.
func (e *Engine) recoverClaim(ctx context.Context, tx pgx.Tx, taskUUID, stepUUID uuid.UUID) (StepState, error) {
	task, err := e.queries.TryLockTask(ctx, tx, taskUUID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	grace := e.cfg.LeaseGrace.Seconds()
	row, err := e.queries.RequeueExpiredClaim(ctx, tx, dbsqlc.RequeueExpiredClaimParams{StepUUID: stepUUID, GraceSeconds: grace, Actor: e.cfg.ProcessID})
	switch {
	case err == nil:
		if err := e.sendSteps(ctx, tx, refOf(task), []stepRef{{uuid: row.StepUUID, name: row.Name}}); err != nil {
			return "", err
		}
		return StepEnqueued, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return "", err
	}
	n, err := e.queries.FailExpiredClaim(ctx, tx, dbsqlc.FailExpiredClaimParams{StepUUID: stepUUID, GraceSeconds: grace, Actor: e.cfg.ProcessID, Error: leaseExpiredError})
	if err != nil || n == 0 {
		return "", err
	}
	return StepError, e.evaluateTask(ctx, tx, task, "a step's claim expired on its last attempt")
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
