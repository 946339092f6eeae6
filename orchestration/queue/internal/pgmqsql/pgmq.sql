-- CreateQueue makes a queue; a no-op when it exists.
-- name: CreateQueue :exec
SELECT pgmq.create(@queue_name::text);

-- SendAndNotify sends one message and, in the same statement, notifies the
-- queue's channel with the queue name as payload.
-- name: SendAndNotify :one
SELECT sent.msg_id::bigint AS msg_id
FROM pgmq.send(@queue_name::text, @message::jsonb, @delay_seconds::integer) AS sent (msg_id),
    pg_notify(@channel::text, @queue_name::text) AS notified;

-- SendBatchAndNotify sends several messages and notifies once; the ids come
-- back in the order of the messages.
-- name: SendBatchAndNotify :many
SELECT sent.msg_id::bigint AS msg_id
FROM pgmq.send_batch(@queue_name::text, @messages::jsonb[], @delay_seconds::integer) AS sent (msg_id),
    pg_notify(@channel::text, @queue_name::text) AS notified
ORDER BY sent.msg_id;

-- ReadMessages claims up to qty visible messages for vt_seconds. Like every
-- query here it calls PGMQ's SQL API only, so it runs the same on the pgmq
-- extension and on migration 0001's functions, and it names its columns
-- (never *) because message_record differs between pgmq versions
-- (last_read_at came in 1.10).
-- name: ReadMessages :many
SELECT m.msg_id::bigint AS msg_id,
    m.read_ct::integer AS read_ct,
    m.enqueued_at::timestamptz AS enqueued_at,
    m.vt::timestamptz AS vt,
    -- As text, so that a body nested deeper than Go's JSON decoder allows
    -- reaches the caller (who archives it) instead of failing the read; a
    -- NULL body sent by another client reads as JSON null.
    coalesce(m.message::text, 'null')::text AS message
FROM pgmq.read(@queue_name::text, @vt_seconds::integer, @qty::integer) AS m
ORDER BY m.msg_id;

-- DeleteMessages returns how many of msg_ids it deleted.
-- name: DeleteMessages :one
SELECT count(*)::bigint AS deleted
FROM pgmq.delete(@queue_name::text, @msg_ids::bigint[]) AS d;

-- ArchiveMessages returns how many of msg_ids it moved to the archive.
-- name: ArchiveMessages :one
SELECT count(*)::bigint AS archived
FROM pgmq.archive(@queue_name::text, @msg_ids::bigint[]) AS a;

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
