package main

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// transition is the time between two consecutive step transitions of the
// latency workload, over every step: e.g. enqueued → in_progress is how long
// steps waited for a worker to claim them.
type transition struct {
	name                 string
	count                int64
	meanMs, p50Ms, p90Ms float64
}

// transitionsSQL times consecutive transitions of each step, and the hop
// from a parent's handing its result to the orchestrator to its child's
// claim: the orchestrator's processing of the result, the child's enqueue
// and a worker's read and claim. created_at is the start of the
// transaction that recorded a transition.
const transitionsSQL = `WITH t AS (
    SELECT id, step_uuid, to_state, created_at,
           lag(created_at) OVER w AS prev_at, lag(to_state) OVER w AS prev_state
    FROM tasker.step_transitions WHERE id > $1
    WINDOW w AS (PARTITION BY step_uuid ORDER BY id)
), timed AS (
    SELECT min(id) OVER (PARTITION BY prev_state, to_state) AS first_id, prev_state || ' → ' || to_state AS name,
           extract(epoch FROM created_at - prev_at) * 1000 AS ms
    FROM t WHERE prev_at IS NOT NULL
    UNION ALL
    SELECT (SELECT max(id) FROM t), 'hop: parent → orchestrator … child claimed',
           extract(epoch FROM c.created_at - p.created_at) * 1000
    FROM t p
    JOIN tasker.workflow_step_edges e ON e.from_step_uuid = p.step_uuid
    JOIN t c ON c.step_uuid = e.to_step_uuid AND c.to_state = 'in_progress'
    WHERE p.to_state = 'enqueued_for_orchestration'
)
SELECT name, count(*), avg(ms), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)
FROM timed GROUP BY name ORDER BY min(first_id)`

// readTransitions times the step transitions recorded after id first.
func (p *profiler) readTransitions(ctx context.Context, first int64) ([]transition, error) {
	rows, err := p.db.Query(ctx, tag+transitionsSQL, first)
	if err != nil {
		return nil, err
	}
	var all []transition
	var t transition
	_, err = pgx.ForEachRow(rows, []any{&t.name, &t.count, &t.meanMs, &t.p50Ms, &t.p90Ms}, func() error {
		all = append(all, t)
		return nil
	})
	return all, err
}
