package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
)

// stepRow is what the tests read back of a step.
type stepRow struct {
	State     string
	Attempts  int32
	ClaimedBy *string
	Results   json.RawMessage
	Error     json.RawMessage
}

func (f *fixture) step(t *testing.T, stepUUID uuid.UUID) stepRow {
	t.Helper()
	var r stepRow
	require.NoError(t, f.pool.QueryRow(t.Context(),
		`SELECT state, attempts, claimed_by, results, error FROM tasker.workflow_steps WHERE step_uuid = $1`, stepUUID,
	).Scan(&r.State, &r.Attempts, &r.ClaimedBy, &r.Results, &r.Error))
	return r
}

// transition is one row of tasker.step_transitions, with the transaction
// that wrote it (xmin): rows written by one statement or transaction share
// it.
type transition struct {
	From, To, Actor, Reason string
	Attempt                 int32
	Xmin                    string
}

// transitionsTo lists the transitions of a step into state, oldest first.
func (f *fixture) transitionsTo(t *testing.T, stepUUID uuid.UUID, state string) []transition {
	t.Helper()
	rows, err := f.pool.Query(t.Context(), `SELECT coalesce(from_state, ''), to_state, actor, reason, attempt, xmin::text
FROM tasker.step_transitions WHERE step_uuid = $1 AND to_state = $2 ORDER BY id`, stepUUID, state)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[transition])
	require.NoError(t, err)
	return out
}

// messageExists reports whether a message is still in a queue's table.
func (f *fixture) messageExists(t *testing.T, queueName string, id int64) bool {
	t.Helper()
	var exists bool
	require.NoError(t, f.pool.QueryRow(t.Context(),
		`SELECT EXISTS (SELECT FROM `+queue.Table(queueName)+` WHERE msg_id = $1)`, id).Scan(&exists))
	return exists
}

// results reads the result messages on the results queue, by step, with
// the transaction that sent each.
func (f *fixture) results(t *testing.T) map[uuid.UUID][]dispatch.ResultMessage {
	t.Helper()
	rows, err := f.pool.Query(t.Context(), `SELECT message FROM `+queue.Table(dispatch.ResultsQueue)+` ORDER BY msg_id`)
	require.NoError(t, err)
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	require.NoError(t, err)
	out := map[uuid.UUID][]dispatch.ResultMessage{}
	for _, body := range bodies {
		msg, err := dispatch.DecodeResultMessage(body)
		require.NoError(t, err)
		out[msg.StepUUID] = append(out[msg.StepUUID], msg)
	}
	return out
}

func (f *fixture) sendRaw(t *testing.T, queueName, body string) int64 {
	t.Helper()
	id, err := f.queue.Send(t.Context(), f.pool, queueName, json.RawMessage(body), 0)
	require.NoError(t, err)
	return id
}

// settle lets the orchestrator process every result waiting.
func (f *fixture) settle(t *testing.T) {
	t.Helper()
	for {
		n, err := f.engine.ProcessResults(t.Context())
		require.NoError(t, err)
		if n == 0 {
			return
		}
	}
}

// claimAll reads every visible message of ns's queue and claims them in one
// batch; every message must yield a claim.
func (f *fixture) claimAll(t *testing.T, e *dispatch.Executor, ns string, want int) []*dispatch.Claim {
	t.Helper()
	msgs := f.read(t, ns, 1000)
	require.Len(t, msgs, want)
	var claims []*dispatch.Claim
	for i, r := range e.ClaimBatch(t.Context(), dispatch.StepQueue(ns), msgs) {
		require.NoError(t, r.Err, "message %d", msgs[i].ID)
		claims = append(claims, r.Claim)
	}
	return claims
}

// blockFlushes takes a lock on the results queue's table that every
// outcome statement waits for, starts recording claim's outcome (whose
// flush then waits) and returns a function that releases the lock and
// returns that outcome's error. Outcomes recorded in the meantime wait for
// the next flush: one batch.
func (f *fixture) blockFlushes(t *testing.T, e *dispatch.Executor, claim *dispatch.Claim) (release func() error) {
	t.Helper()
	ctx := t.Context()
	tx, err := f.pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) }) // a failed test does not hang
	_, err = tx.Exec(ctx, `LOCK TABLE `+queue.Table(dispatch.ResultsQueue)+` IN SHARE MODE`)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		done <- e.Record(context.Background(), claim, dispatch.Outcome{Result: json.RawMessage(`{"blocker": true}`)})
	}()
	f.waitForALockWait(t)
	return func() error {
		require.NoError(t, tx.Commit(ctx))
		return <-done
	}
}

// waitForALockWait waits until a statement of the test's database waits
// for a lock.
func (f *fixture) waitForALockWait(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, f.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		return waiting > 0
	}, 10*time.Second, 5*time.Millisecond, "a statement waits for the lock")
}

// lockStep locks a step's row in a transaction of its own until the
// returned function commits it.
func (f *fixture) lockStep(t *testing.T, stepUUID uuid.UUID) (unlock func()) {
	t.Helper()
	tx, err := f.pool.Begin(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	_, err = tx.Exec(t.Context(), `SELECT FROM tasker.workflow_steps WHERE step_uuid = $1 FOR NO KEY UPDATE`, stepUUID)
	require.NoError(t, err)
	return func() { require.NoError(t, tx.Commit(t.Context())) }
}

// recordAll records the outcomes concurrently, after giving every call time
// to queue up behind the blocked flush, and returns their errors.
func recordAll(t *testing.T, e *dispatch.Executor, claims []*dispatch.Claim, outcomes []dispatch.Outcome, release func() error) (errs []error, blockerErr error) {
	t.Helper()
	errs = make([]error, len(claims))
	var wg sync.WaitGroup
	for i, claim := range claims {
		wg.Go(func() { errs[i] = e.Record(context.Background(), claim, outcomes[i]) })
	}
	time.Sleep(300 * time.Millisecond) // every Record is queued behind the blocked flush
	blockerErr = release()
	wg.Wait()
	return errs, blockerErr
}

func TestClaimBatchClaimsManyStepsInOneStatement(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "claim_a", "claim_b")
	ctx := t.Context()
	queueA := dispatch.StepQueue("claim_a")
	tasksA := f.createTasks(t, "claim_a", 6)
	tasksB := f.createTasks(t, "claim_b", 2)
	rootOf := func(task uuid.UUID) uuid.UUID {
		var id uuid.UUID
		require.NoError(t, f.pool.QueryRow(ctx, `SELECT step_uuid FROM tasker.workflow_steps WHERE task_uuid = $1 AND name = 'start'`, task).Scan(&id))
		return id
	}

	// Besides the six roots' messages: a second message for the first
	// root, malformed messages, one naming a step of claim_b's first task
	// under claim_a's first task, and one naming an unknown step.
	dupID := f.sendRaw(t, queueA, fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q}`, tasksA[0], rootOf(tasksA[0])))
	bad := map[int64]string{
		f.sendRaw(t, queueA, `"hello"`):                                                                       "not valid JSON of the expected shape",
		f.sendRaw(t, queueA, fmt.Sprintf(`{"task_uuid": %q}`, tasksA[1])):                                     "needs task_uuid and step_uuid",
		f.sendRaw(t, queueA, fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q}`, tasksA[0], rootOf(tasksB[0]))): "belongs to task",
		f.sendRaw(t, queueA, fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q}`, tasksA[0], uuid.New())):        "unknown step",
	}

	msgs := f.read(t, "claim_a", 100)
	require.Len(t, msgs, 6+1+len(bad))
	e := f.executor(t, "worker-1")
	results := e.ClaimBatch(ctx, queueA, msgs)
	require.Len(t, results, len(msgs))

	claimed := map[uuid.UUID]*dispatch.Claim{}
	var notClaimable []int64
	for i, r := range results {
		msg := msgs[i]
		if reason, isBad := bad[msg.ID]; isBad {
			require.ErrorIs(t, r.Err, dispatch.ErrMalformed, "message %d", msg.ID)
			require.ErrorContains(t, r.Err, reason)
			continue
		}
		if errors.Is(r.Err, dispatch.ErrNotClaimable) {
			notClaimable = append(notClaimable, msg.ID)
			continue
		}
		require.NoError(t, r.Err)
		c := r.Claim
		require.Equal(t, msg.ID, c.MessageID)
		require.Equal(t, queueA, c.Queue)
		require.Equal(t, "start", c.Step.Name)
		require.EqualValues(t, 1, c.Step.Attempts)
		require.Equal(t, "enqueued", c.Step.FromState)
		require.Equal(t, "claim_a.start", c.Step.HandlerCallable)
		require.Equal(t, c.Step.TaskUUID, c.Input.Task.TaskUUID)
		require.Equal(t, "claim_a", c.Input.Task.NamespaceName)
		require.Equal(t, "diamond", c.Input.Task.Name)
		require.JSONEq(t, `{"n": 1}`, string(c.Input.Task.Context))
		require.Empty(t, c.Input.Ancestors)
		require.WithinDuration(t, time.Now().Add(c.Timeout()+5*time.Second), c.Step.ClaimExpiresAt, 5*time.Second)
		claimed[c.Step.TaskUUID] = c
	}
	require.Len(t, claimed, 6, "every root is claimed once")

	xmins := map[string]bool{}
	for _, task := range tasksA {
		c := claimed[task]
		require.NotNil(t, c, "task %s", task)
		require.Equal(t, rootOf(task), c.Step.StepUUID)
		row := f.step(t, c.Step.StepUUID)
		require.Equal(t, "in_progress", row.State)
		require.Equal(t, "worker-1", *row.ClaimedBy)
		require.EqualValues(t, 1, row.Attempts)
		trs := f.transitionsTo(t, c.Step.StepUUID, "in_progress")
		require.Len(t, trs, 1)
		require.Equal(t, transition{From: "enqueued", To: "in_progress", Actor: "worker-1", Reason: "claimed", Attempt: 1, Xmin: trs[0].Xmin}, trs[0])
		xmins[trs[0].Xmin] = true
	}
	require.Len(t, xmins, 1, "the six claims are one statement")

	// Of the first root's two messages, the one that did not yield the
	// claim waits, hidden, for the claim's lease to end; the bad ones are
	// archived with their reasons.
	require.Len(t, notClaimable, 1)
	require.Contains(t, []int64{dupID, claimed[tasksA[0]].MessageID}, notClaimable[0])
	require.NotEqual(t, notClaimable[0], claimed[tasksA[0]].MessageID)
	require.True(t, f.messageExists(t, queueA, notClaimable[0]))
	require.Empty(t, f.read(t, "claim_a", 100), "nothing is visible")
	letters, err := dbsqlc.New().ListDeadLetters(ctx, f.pool, queueA)
	require.NoError(t, err)
	require.Len(t, letters, len(bad))
	for _, l := range letters {
		require.Contains(t, l.Reason, bad[l.MsgID])
		require.Equal(t, "worker-1", l.Actor)
	}
	// claim_b's root, named under the wrong task, was not claimed.
	for _, task := range tasksB {
		row := f.step(t, rootOf(task))
		require.Equal(t, "enqueued", row.State)
		require.Zero(t, row.Attempts)
	}
}

func TestClaimBatchFallsBackToOneByOneWhenTheBatchFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "claim_fb")
	ctx := t.Context()
	queueName := dispatch.StepQueue("claim_fb")
	tasks := f.createTasks(t, "claim_fb", 4)
	// A trigger refuses any statement that changes more than one step: the
	// batch fails as a whole, one step at a time succeeds.
	_, err := f.pool.Exec(ctx, `CREATE FUNCTION public.one_step_at_a_time() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM changed) > 1 THEN
        RAISE EXCEPTION 'one step at a time';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER one_step_at_a_time AFTER UPDATE ON tasker.workflow_steps
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION public.one_step_at_a_time()`)
	require.NoError(t, err)
	var root uuid.UUID
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT step_uuid FROM tasker.workflow_steps WHERE task_uuid = $1 AND name = 'start'`, tasks[0]).Scan(&root))
	f.sendRaw(t, queueName, fmt.Sprintf(`{"task_uuid": %q, "step_uuid": %q}`, tasks[0], root))

	msgs := f.read(t, "claim_fb", 100)
	require.Len(t, msgs, 5)
	e := f.executor(t, "worker-1")
	xmins := map[string]bool{}
	notClaimable := 0
	for _, r := range e.ClaimBatch(ctx, queueName, msgs) {
		if errors.Is(r.Err, dispatch.ErrNotClaimable) {
			notClaimable++
			continue
		}
		require.NoError(t, r.Err)
		require.Equal(t, "in_progress", f.step(t, r.Claim.Step.StepUUID).State)
		trs := f.transitionsTo(t, r.Claim.Step.StepUUID, "in_progress")
		require.Len(t, trs, 1)
		xmins[trs[0].Xmin] = true
	}
	require.Equal(t, 1, notClaimable, "the second message of the first root")
	require.Len(t, xmins, 4, "claimed one by one")
}

func TestClaimBatchLoadsEachStepsAncestors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "anc")
	ctx := t.Context()
	tasks := f.createTasks(t, "anc", 5)
	e := f.executor(t, "worker-1")
	// Each step's result names its task and step, so that a result handed
	// to another task's step would show.
	run := func(want int) []*dispatch.Claim {
		claims := f.claimAll(t, e, "anc", want)
		for _, c := range claims {
			result := fmt.Sprintf(`{"task": %q, "step": %q}`, c.Step.TaskUUID, c.Step.Name)
			require.NoError(t, e.Record(ctx, c, dispatch.Outcome{Result: json.RawMessage(result)}))
		}
		f.settle(t)
		return claims
	}
	resultOf := func(task uuid.UUID, step string) string {
		return fmt.Sprintf(`{"task": %q, "step": %q}`, task, step)
	}

	for _, c := range run(5) {
		require.Empty(t, c.Input.Ancestors)
	}
	branches := run(10)
	for _, c := range branches {
		require.Contains(t, []string{"left", "right"}, c.Step.Name)
		require.Len(t, c.Input.Ancestors, 1)
		require.JSONEq(t, resultOf(c.Step.TaskUUID, "start"), string(c.Input.Ancestors["start"]))
	}
	ends := run(5)
	seen := map[uuid.UUID]bool{}
	for _, c := range ends {
		require.Equal(t, "end", c.Step.Name)
		require.Len(t, c.Input.Ancestors, 3, "every ancestor, not only the parents")
		for _, name := range []string{"start", "left", "right"} {
			require.JSONEq(t, resultOf(c.Step.TaskUUID, name), string(c.Input.Ancestors[name]))
		}
		seen[c.Step.TaskUUID] = true
	}
	require.Len(t, seen, len(tasks))
}

func TestClaimBatchTakesOverExpiredClaims(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "takeover")
	ctx := t.Context()
	queueName := dispatch.StepQueue("takeover")
	f.createTasks(t, "takeover", 3)
	dead := f.executor(t, "worker-dead")
	live := f.executor(t, "worker-live")
	deadClaims := f.claimAll(t, dead, "takeover", 3)

	// Two of the dead worker's leases run out; their messages come back.
	for _, c := range deadClaims[:2] {
		_, err := f.pool.Exec(ctx, `UPDATE tasker.workflow_steps SET claim_expires_at = now() - interval '1 second' WHERE step_uuid = $1`, c.Step.StepUUID)
		require.NoError(t, err)
		_, err = f.queue.SetVisibility(ctx, f.pool, queueName, c.MessageID, 0)
		require.NoError(t, err)
	}
	liveClaims := f.claimAll(t, live, "takeover", 2)
	for _, c := range liveClaims {
		require.EqualValues(t, 2, c.Step.Attempts)
		require.Equal(t, "in_progress", c.Step.FromState)
		trs := f.transitionsTo(t, c.Step.StepUUID, "in_progress")
		require.Len(t, trs, 2)
		require.Equal(t, "in_progress", trs[1].From)
		require.Equal(t, "worker-live", trs[1].Actor)
		require.Equal(t, "claimed again after the previous claim expired", trs[1].Reason)
		require.EqualValues(t, 2, trs[1].Attempt)
	}

	// The dead worker's late outcomes are discarded; the messages stay for
	// the live worker, which records its own.
	ok := dispatch.Outcome{Result: json.RawMessage(`{"v": 1}`)}
	for _, c := range deadClaims[:2] {
		require.ErrorIs(t, dead.Record(ctx, c, ok), dispatch.ErrClaimLost)
		require.True(t, f.messageExists(t, queueName, c.MessageID))
	}
	require.NoError(t, dead.Record(ctx, deadClaims[2], ok))
	for _, c := range liveClaims {
		require.NoError(t, live.Record(ctx, c, ok))
		require.False(t, f.messageExists(t, queueName, c.MessageID))
		require.Equal(t, "enqueued_for_orchestration", f.step(t, c.Step.StepUUID).State)
	}
}

func TestRecordStoresConcurrentOutcomesInOneTransaction(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "rec_a", "rec_b")
	ctx := t.Context()
	f.createTasks(t, "rec_a", 12)
	f.createTasks(t, "rec_b", 6)
	e := f.executor(t, "worker-1")
	other := f.executor(t, "worker-2")
	claimsA := f.claimAll(t, e, "rec_a", 12)
	claimsB := f.claimAll(t, e, "rec_b", 6)

	// One claim of rec_b is lost before its outcome arrives: the lease ran
	// out and worker-2 took the step over from the same message.
	lost := claimsB[5]
	_, err := f.pool.Exec(ctx, `UPDATE tasker.workflow_steps SET claim_expires_at = now() - interval '1 second' WHERE step_uuid = $1`, lost.Step.StepUUID)
	require.NoError(t, err)
	_, err = f.queue.SetVisibility(ctx, f.pool, dispatch.StepQueue("rec_b"), lost.MessageID, 0)
	require.NoError(t, err)
	takeover := f.claimAll(t, other, "rec_b", 1)[0]

	release := f.blockFlushes(t, e, claimsA[0])
	// Behind the blocked flush: successes and failures of both queues, an
	// unstorable result, the lost claim, and one claim recorded twice.
	claims := append(append([]*dispatch.Claim{}, claimsA[1:]...), claimsB...)
	claims = append(claims, claimsA[1])
	outcomes := make([]dispatch.Outcome, len(claims))
	for i, c := range claims {
		outcomes[i] = dispatch.Outcome{Result: json.RawMessage(fmt.Sprintf(`{"step": %q}`, c.Step.StepUUID))}
	}
	outcomes[2] = dispatch.Outcome{Error: &dispatch.StepError{Code: "FLAKY", Message: "try again", Retryable: true}}
	outcomes[3] = dispatch.Outcome{Error: &dispatch.StepError{Code: "BAD_INPUT", Message: "no"}}
	outcomes[4] = dispatch.Outcome{Result: json.RawMessage(`{"nul": "\u0000"}`)}
	errs, blockerErr := recordAll(t, e, claims, outcomes, release)
	require.NoError(t, blockerErr)

	// The claim recorded twice: one call stored it, the other found the
	// claim ended.
	first, second := errs[0], errs[len(errs)-1]
	require.NotEqual(t, first == nil, second == nil, "one of the two calls stored the outcome: %v, %v", first, second)
	require.ErrorIs(t, errors.Join(first, second), dispatch.ErrClaimLost)
	require.ErrorIs(t, errs[len(claimsA)-1+5], dispatch.ErrClaimLost, "the lost claim")
	for i, err := range errs[1 : len(errs)-1] {
		if claims[i+1] != lost {
			require.NoError(t, err, "outcome %d", i+1)
		}
	}

	results := f.results(t)
	xmins := map[string]int{}
	for i, c := range claims[:len(claims)-1] {
		id := c.Step.StepUUID
		row := f.step(t, id)
		if c == lost {
			require.Equal(t, "in_progress", row.State)
			require.Equal(t, "worker-2", *row.ClaimedBy)
			require.True(t, f.messageExists(t, c.Queue, c.MessageID), "worker-2 runs from the message")
			require.Empty(t, results[id])
			require.Empty(t, f.transitionsTo(t, id, "enqueued_for_orchestration"))
			continue
		}
		require.False(t, f.messageExists(t, c.Queue, c.MessageID))
		require.Len(t, results[id], 1, "one result message per outcome")
		require.Equal(t, dispatch.ResultMessage{TaskUUID: c.Step.TaskUUID, StepUUID: id, Attempt: 1, Success: row.State == "enqueued_for_orchestration"}, results[id][0])
		want := "enqueued_for_orchestration"
		switch i {
		case 2, 3, 4:
			want = "enqueued_as_error_for_orchestration"
		}
		require.Equal(t, want, row.State, "outcome %d", i)
		trs := f.transitionsTo(t, id, want)
		require.Len(t, trs, 1, "one transition per outcome")
		require.Equal(t, "in_progress", trs[0].From)
		require.Equal(t, "worker-1", trs[0].Actor)
		xmins[trs[0].Xmin]++
		switch i {
		case 2:
			require.Equal(t, "handler failed: FLAKY", trs[0].Reason)
			require.JSONEq(t, `{"code": "FLAKY", "message": "try again", "retryable": true}`, string(row.Error))
		case 3:
			require.JSONEq(t, `{"code": "BAD_INPUT", "message": "no", "retryable": false}`, string(row.Error))
		case 4:
			require.Contains(t, string(row.Error), "INVALID_RESULT")
		default:
			require.Equal(t, "handler succeeded", trs[0].Reason)
			require.JSONEq(t, fmt.Sprintf(`{"step": %q}`, id), string(row.Results))
		}
	}
	require.Len(t, xmins, 1, "every outcome queued behind the blocked flush went in one transaction: %v", xmins)
	blocker := f.transitionsTo(t, claimsA[0].Step.StepUUID, "enqueued_for_orchestration")
	require.Len(t, blocker, 1)
	require.NotContains(t, xmins, blocker[0].Xmin, "the blocked flush was a transaction of its own")

	// The takeover's own outcome still goes through.
	require.NoError(t, other.Record(ctx, takeover, dispatch.Outcome{Result: json.RawMessage(`{}`)}))
	require.False(t, f.messageExists(t, takeover.Queue, takeover.MessageID))
}

func TestBatchesSkipALockedStepAndTakeItOnItsOwn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "skip")
	ctx := t.Context()
	queueName := dispatch.StepQueue("skip")
	tasks := f.createTasks(t, "skip", 3)
	e := f.executor(t, "worker-1")
	rootOf := func(task uuid.UUID) uuid.UUID {
		var id uuid.UUID
		require.NoError(t, f.pool.QueryRow(ctx, `SELECT step_uuid FROM tasker.workflow_steps WHERE task_uuid = $1 AND name = 'start'`, task).Scan(&id))
		return id
	}

	// The claim: the batch takes the steps nobody has locked without
	// waiting; the locked one is then claimed on its own, once the lock is
	// gone.
	locked := rootOf(tasks[0])
	unlock := f.lockStep(t, locked)
	msgs := f.read(t, "skip", 10)
	require.Len(t, msgs, 3)
	type claimed struct {
		results []dispatch.ClaimResult
	}
	done := make(chan claimed, 1)
	go func() { done <- claimed{e.ClaimBatch(context.Background(), queueName, msgs)} }()
	f.waitForALockWait(t)
	require.Eventually(t, func() bool {
		return f.step(t, rootOf(tasks[1])).State == "in_progress" && f.step(t, rootOf(tasks[2])).State == "in_progress"
	}, 10*time.Second, 5*time.Millisecond, "the batch did not wait for the locked step")
	require.Equal(t, "enqueued", f.step(t, locked).State)
	unlock()
	res := (<-done).results
	claims := map[uuid.UUID]*dispatch.Claim{}
	for _, r := range res {
		require.NoError(t, r.Err)
		claims[r.Claim.Step.StepUUID] = r.Claim
	}
	require.Len(t, claims, 3)
	xmin := func(step uuid.UUID, state string) string {
		trs := f.transitionsTo(t, step, state)
		require.Len(t, trs, 1)
		return trs[0].Xmin
	}
	require.Equal(t, xmin(rootOf(tasks[1]), "in_progress"), xmin(rootOf(tasks[2]), "in_progress"))
	require.NotEqual(t, xmin(rootOf(tasks[1]), "in_progress"), xmin(locked, "in_progress"))

	// The outcomes: a batch stores the outcomes of the steps nobody has
	// locked without waiting; the locked one is then stored on its own,
	// once the lock is gone.
	unlock = f.lockStep(t, locked)
	release := f.blockFlushes(t, e, claims[rootOf(tasks[1])])
	errs := make(chan error, 1)
	go func() {
		errs <- e.Record(context.Background(), claims[locked], dispatch.Outcome{Result: json.RawMessage(`{}`)})
	}()
	other := make(chan error, 1)
	go func() {
		other <- e.Record(context.Background(), claims[rootOf(tasks[2])], dispatch.Outcome{Result: json.RawMessage(`{}`)})
	}()
	time.Sleep(300 * time.Millisecond) // both outcomes are queued behind the blocked flush
	require.NoError(t, release())
	require.NoError(t, <-other, "not held up by the locked step")
	require.Equal(t, "enqueued_for_orchestration", f.step(t, rootOf(tasks[2])).State)
	require.Equal(t, "in_progress", f.step(t, locked).State)
	unlock()
	require.NoError(t, <-errs)
	require.Equal(t, "enqueued_for_orchestration", f.step(t, locked).State)
	require.False(t, f.messageExists(t, queueName, claims[locked].MessageID))
	require.Len(t, f.results(t)[locked], 1)
}

func TestRecordFallsBackToOneByOneWhenTheBatchFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "fallback")
	ctx := t.Context()
	f.createTasks(t, "fallback", 6)
	e := f.executor(t, "worker-1")
	claims := f.claimAll(t, e, "fallback", 6)

	release := f.blockFlushes(t, e, claims[0])
	// A claim that names a queue without a table fails the batch that
	// holds it; the other outcomes are then stored one by one.
	broken := *claims[1]
	broken.Queue = "no_such_queue"
	batch := append([]*dispatch.Claim{&broken}, claims[2:]...)
	outcomes := make([]dispatch.Outcome, len(batch))
	for i := range outcomes {
		outcomes[i] = dispatch.Outcome{Result: json.RawMessage(`{"ok": true}`)}
	}
	errs, blockerErr := recordAll(t, e, batch, outcomes, release)
	require.NoError(t, blockerErr)
	require.Error(t, errs[0])
	require.NotErrorIs(t, errs[0], dispatch.ErrClaimLost)
	require.Equal(t, "in_progress", f.step(t, broken.Step.StepUUID).State, "nothing of the failed outcome was stored")
	xmins := map[string]bool{}
	for i, c := range batch[1:] {
		require.NoError(t, errs[i+1])
		require.Equal(t, "enqueued_for_orchestration", f.step(t, c.Step.StepUUID).State)
		require.False(t, f.messageExists(t, c.Queue, c.MessageID))
		trs := f.transitionsTo(t, c.Step.StepUUID, "enqueued_for_orchestration")
		require.Len(t, trs, 1)
		xmins[trs[0].Xmin] = true
	}
	require.Len(t, xmins, len(batch)-1, "stored one by one")

	// The real claim records normally.
	require.NoError(t, e.Record(ctx, claims[1], dispatch.Outcome{Result: json.RawMessage(`{}`)}))
}

func TestRecordWithdrawsAnOutcomeWhoseContextEndsWhileItWaits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "withdraw")
	f.createTasks(t, "withdraw", 2)
	e := f.executor(t, "worker-1")
	claims := f.claimAll(t, e, "withdraw", 2)

	release := f.blockFlushes(t, e, claims[0])
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := e.Record(ctx, claims[1], dispatch.Outcome{Result: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, release())
	require.Equal(t, "in_progress", f.step(t, claims[1].Step.StepUUID).State, "the withdrawn outcome was not stored")
	require.True(t, f.messageExists(t, claims[1].Queue, claims[1].MessageID))
	require.Equal(t, "enqueued_for_orchestration", f.step(t, claims[0].Step.StepUUID).State)
}
