-- CreateQueue makes a queue; a no-op when it exists.
-- name: CreateQueue :exec
SELECT pgmq.create(@queue_name::text);

-- Send, read, delete and archive run plain SQL on the queue tables instead
-- (orchestration/queue/direct.go): the functions re-plan a dynamic statement
-- on every call.

-- SetVisibility makes a message visible vt_seconds from now; no row when the
-- message is not there.
-- name: SetVisibility :one
SELECT m.msg_id::bigint AS msg_id,
    m.read_ct::integer AS read_ct,
    m.enqueued_at::timestamptz AS enqueued_at,
    m.vt::timestamptz AS vt,
    -- As text, so that a body nested deeper than Go's JSON decoder allows
    -- reaches the caller (who archives it) instead of failing the read; a
    -- NULL body sent by another client reads as JSON null.
    coalesce(m.message::text, 'null')::text AS message
FROM pgmq.set_vt(@queue_name::text, @msg_id::bigint, @vt_seconds::integer) AS m;

-- QueueMetrics reports a queue's sizes. pgmq gives NULL ages for an empty
-- queue; they come back as 0 (sqlc cannot type a nullable column of a
-- function's composite result).
-- name: QueueMetrics :one
SELECT m.queue_name::text AS queue_name,
    m.queue_length::bigint AS queue_length,
    coalesce(m.newest_msg_age_sec, 0)::integer AS newest_msg_age_sec,
    coalesce(m.oldest_msg_age_sec, 0)::integer AS oldest_msg_age_sec,
    m.total_messages::bigint AS total_messages,
    m.scrape_time::timestamptz AS scrape_time,
    m.queue_visible_length::bigint AS queue_visible_length
FROM pgmq.metrics(@queue_name::text) AS m;

-- PurgeQueue deletes every message of a queue and returns how many.
-- name: PurgeQueue :one
SELECT pgmq.purge_queue(@queue_name::text)::bigint AS purged;
