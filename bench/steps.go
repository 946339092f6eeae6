package main

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// stepTimelineQuery returns, for each step of the tasks, its attempts, its
// enqueued_at and started_at columns (now() of the enqueuing and of the
// claiming transaction: their start times), and the commit timestamps of
// the transactions that first moved it to enqueued, in_progress (the
// worker's claim), enqueued_for_orchestration (the worker recorded its
// result) and complete (the orchestrator settled it), found through the
// xmin of its transition rows, which are never updated.
const stepTimelineQuery = `WITH first AS (
    SELECT DISTINCT ON (st.step_uuid, st.to_state)
           st.step_uuid, st.to_state, pg_xact_commit_timestamp(st.xmin) AS committed
    FROM tasker.step_transitions st
    WHERE st.task_uuid = ANY($1)
    ORDER BY st.step_uuid, st.to_state, st.id
)
SELECT ws.task_uuid, ws.attempts, ws.enqueued_at, ws.started_at,
       max(f.committed) FILTER (WHERE f.to_state = 'enqueued'),
       max(f.committed) FILTER (WHERE f.to_state = 'in_progress'),
       max(f.committed) FILTER (WHERE f.to_state = 'enqueued_for_orchestration'),
       max(f.committed) FILTER (WHERE f.to_state = 'complete')
FROM tasker.workflow_steps ws
JOIN first f ON f.step_uuid = ws.step_uuid
WHERE ws.task_uuid = ANY($1)
GROUP BY ws.step_uuid`

// stepTimeline is one step's way through the system.
type stepTimeline struct {
	task     uuid.UUID
	attempts int
	// enqueuedAt and startedAt are the columns of the same names.
	enqueuedAt, startedAt time.Time
	// enqueued, claimed, recorded and completed are commit timestamps.
	enqueued, claimed, recorded, completed time.Time
}

// readStepTimelines reads the timeline of every step of the tasks.
func readStepTimelines(ctx context.Context, conn *pgx.Conn, taskIDs []uuid.UUID) ([]stepTimeline, error) {
	rows, err := conn.Query(ctx, stepTimelineQuery, taskIDs)
	if err != nil {
		return nil, err
	}
	var steps []stepTimeline
	var s stepTimeline
	var times [6]*time.Time
	scan := []any{&s.task, &s.attempts, &times[0], &times[1], &times[2], &times[3], &times[4], &times[5]}
	_, err = pgx.ForEachRow(rows, scan, func() error {
		for _, t := range times {
			if t == nil {
				return errors.New("a step lacks enqueued_at, started_at or a transition's commit timestamp " +
					"(is track_commit_timestamp on? did every step complete?)")
			}
		}
		s.enqueuedAt, s.startedAt = *times[0], *times[1]
		s.enqueued, s.claimed, s.recorded, s.completed = *times[2], *times[3], *times[4], *times[5]
		steps = append(steps, s)
		return nil
	})
	return steps, err
}

// summarizeDispatch computes the dispatch distributions of the steps.
func summarizeDispatch(steps []stepTimeline) dispatchResult {
	var commitToCommit, columns, startToCommit []time.Duration
	res := dispatchResult{Steps: len(steps)}
	for _, s := range steps {
		if s.attempts > 1 {
			res.Retried++
		}
		commitToCommit = append(commitToCommit, s.claimed.Sub(s.enqueued))
		columns = append(columns, s.startedAt.Sub(s.enqueuedAt))
		startToCommit = append(startToCommit, s.claimed.Sub(s.enqueuedAt))
	}
	res.EnqueueCommitToClaimCommit = distOf(commitToCommit)
	res.EnqueuedAtToStartedAt = distOf(columns)
	res.EnqueuedAtToClaimCommit = distOf(startToCommit)
	return res
}

// stepBreakdown says where a latency task's time goes, between the commits
// that move its steps along.
type stepBreakdown struct {
	// Create runs from just before the POST to the commit that created the
	// task and enqueued its root steps (one per task).
	Create dist `json:"post_to_root_enqueue_commit"`
	// Dispatch runs from a step's enqueue commit to its claim's commit.
	Dispatch dist `json:"enqueue_commit_to_claim_commit"`
	// Run runs from the claim's commit to the commit of the worker's
	// record of the result: input loading, the handler and the record.
	Run dist `json:"claim_commit_to_result_commit"`
	// Settle runs from that commit to the orchestrator's commit of the
	// step as complete (which also enqueues its ready children).
	Settle dist `json:"result_commit_to_complete_commit"`
}

// summarizeBreakdown computes the breakdown of the tasks' time.
func summarizeBreakdown(steps []stepTimeline, tasks ...[]taskTiming) stepBreakdown {
	firstEnqueue := map[uuid.UUID]time.Time{}
	var dispatch, run, settle []time.Duration
	for _, s := range steps {
		if first, ok := firstEnqueue[s.task]; !ok || s.enqueued.Before(first) {
			firstEnqueue[s.task] = s.enqueued
		}
		dispatch = append(dispatch, s.claimed.Sub(s.enqueued))
		run = append(run, s.recorded.Sub(s.claimed))
		settle = append(settle, s.completed.Sub(s.recorded))
	}
	var create []time.Duration
	for _, list := range tasks {
		for _, t := range list {
			create = append(create, firstEnqueue[t.id].Sub(t.start))
		}
	}
	return stepBreakdown{Create: distOf(create), Dispatch: distOf(dispatch), Run: distOf(run), Settle: distOf(settle)}
}
