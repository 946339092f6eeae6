package queue

import (
	"sync"

	"github.com/jackc/pgx/v5"
)

// The hot operations (send, read, delete, archive) run plain SQL against
// the queue's tables rather than PGMQ's functions. The functions build their
// statement with format() and EXECUTE on every call, which PostgreSQL plans
// afresh each time and which costs several times the statement itself;
// plain SQL is prepared once per connection by pgx and its plan reused.
//
// The statements use the table layout shared by every PGMQ version since 1.5
// and by migration 0001: pgmq.q_<queue> (msg_id, read_ct, enqueued_at, vt,
// message, headers) and pgmq.a_<queue> with archived_at; they do not touch
// last_read_at, which PGMQ gained later. Administrative operations (create,
// set visibility, metrics, purge) still call the functions.

// Table returns the quoted name of queue's message table, pgmq.q_<queue>,
// for statements that touch a queue together with other tables (e.g. a
// worker's outcome, its result message and the step message's deletion, in
// one statement). queue must be valid (ValidateName).
func Table(queue string) string {
	return pgx.Identifier{"pgmq", "q_" + queue}.Sanitize()
}

// queueSQL holds one queue's statements.
type queueSQL struct {
	send, sendBatch, read, readLocked, hide, delete, archive string
}

// statements returns the statements of queue, building them on first use.
// queue must be valid (ValidateName): it becomes part of an identifier.
func (c *Client) statements(queue string) *queueSQL {
	if s, ok := c.sql.Load(queue); ok {
		return s.(*queueSQL) //nolint:forcetypeassert // only *queueSQL is stored
	}
	q := Table(queue)
	a := pgx.Identifier{"pgmq", "a_" + queue}.Sanitize()
	s := &queueSQL{
		// $1 delay seconds, $2 message, $3 channel, $4 payload. The NOTIFY
		// runs in the same statement, so it is sent at commit or never.
		send: `WITH sent AS (
    INSERT INTO ` + q + ` (vt, message) VALUES (clock_timestamp() + make_interval(secs => $1::integer), $2::jsonb)
    RETURNING msg_id
)
SELECT sent.msg_id FROM sent, pg_notify($3::text, $4::text) AS notified`,
		// $1 delay seconds, $2 messages, $3 channel, $4 payload.
		sendBatch: `WITH sent AS (
    INSERT INTO ` + q + ` (vt, message)
    SELECT clock_timestamp() + make_interval(secs => $1::integer), m.msg
    FROM unnest($2::jsonb[]) WITH ORDINALITY AS m (msg, pos)
    ORDER BY m.pos
    RETURNING msg_id
)
SELECT sent.msg_id FROM sent, pg_notify($3::text, $4::text) AS notified ORDER BY sent.msg_id`,
		// $1 visibility seconds, $2 how many. By vt, on its index: the
		// messages in flight (vt in the future) and those already deleted
		// sit in the msg_id order that pgmq.read scans, and under load a
		// read stepped over dozens of them. The body comes as text (see
		// Read); a NULL body reads as JSON null.
		read: `WITH picked AS (
    SELECT m.msg_id FROM ` + q + ` AS m
    WHERE m.vt <= clock_timestamp()
    ORDER BY m.vt
    LIMIT $2::integer
    FOR UPDATE SKIP LOCKED
)
UPDATE ` + q + ` AS m
SET vt = clock_timestamp() + make_interval(secs => $1::integer), read_ct = m.read_ct + 1
-- An array of ids, not a join with picked: a join let the planner hash it
-- against a scan of the whole table, dead rows included.
WHERE m.msg_id = ANY (ARRAY(SELECT picked.msg_id FROM picked))
RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, coalesce(m.message::text, 'null')`,
		// $1 how many. The same messages as read picks, locked and left as
		// they are (see ReadLocked).
		readLocked: `SELECT m.msg_id, m.read_ct, m.enqueued_at, m.vt, coalesce(m.message::text, 'null')
FROM ` + q + ` AS m
WHERE m.vt <= clock_timestamp()
ORDER BY m.vt
LIMIT $1::integer
FOR UPDATE SKIP LOCKED`,
		// $1 visibility seconds, $2 ids: what read does to the messages it
		// picked.
		hide: `UPDATE ` + q + ` AS m
SET vt = clock_timestamp() + make_interval(secs => $1::integer), read_ct = m.read_ct + 1
WHERE m.msg_id = ANY($2::bigint[])
RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, coalesce(m.message::text, 'null')`,
		// $1 ids.
		delete: `WITH deleted AS (DELETE FROM ` + q + ` AS m WHERE m.msg_id = ANY($1::bigint[]) RETURNING 1)
SELECT count(*) FROM deleted`,
		archive: `WITH moved AS (
    DELETE FROM ` + q + ` AS m WHERE m.msg_id = ANY($1::bigint[])
    RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
), archived AS (
    INSERT INTO ` + a + ` (msg_id, read_ct, enqueued_at, vt, message, headers)
    SELECT msg_id, read_ct, enqueued_at, vt, message, headers FROM moved
    RETURNING 1
)
SELECT count(*) FROM archived`,
	}
	actual, _ := c.sql.LoadOrStore(queue, s)
	return actual.(*queueSQL) //nolint:forcetypeassert // only *queueSQL is stored
}

// sqlCache maps a queue name to its *queueSQL.
type sqlCache = sync.Map
