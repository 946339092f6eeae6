-- tasker:prefer-extension pgmq
--
-- The queue layer. When the server offers the pgmq extension the migrator runs
-- CREATE EXTENSION pgmq instead of this file. Otherwise this file installs a
-- compatible implementation of PGMQ's SQL API (core functions of pgmq 1.13:
-- names, argument names and types, return types, table layout) in schema
-- pgmq, so that any PGMQ client can use tasker's queues.
--
-- Not provided: partitioned queues (pg_partman), FIFO/grouped reads, topics,
-- insert triggers (enable_notify_insert). tasker wakes consumers with its own
-- NOTIFY, sent by the Go client in the sending transaction.
--
-- Queue names are stricter than PGMQ's: ^[a-z_][a-z0-9_]*$, at most 47
-- characters, so that the longest derived identifier (archived_at_idx_<name>)
-- fits PostgreSQL's 63-byte limit.

CREATE SCHEMA pgmq;

-- One row per queue.
CREATE TABLE pgmq.meta (
    queue_name     varchar UNIQUE NOT NULL,
    is_partitioned boolean NOT NULL,
    is_unlogged    boolean NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- A message as read, popped or re-timed.
CREATE TYPE pgmq.message_record AS (
    msg_id       bigint,
    read_ct      integer,
    enqueued_at  timestamptz,
    last_read_at timestamptz,
    vt           timestamptz,
    message      jsonb,
    headers      jsonb
);

-- A row of list_queues().
CREATE TYPE pgmq.queue_record AS (
    queue_name     varchar,
    is_partitioned boolean,
    is_unlogged    boolean,
    created_at     timestamptz
);

-- A row of metrics() and metrics_all().
CREATE TYPE pgmq.metrics_result AS (
    queue_name           text,
    queue_length         bigint,
    newest_msg_age_sec   integer,
    oldest_msg_age_sec   integer,
    total_messages       bigint,
    scrape_time          timestamptz,
    queue_visible_length bigint
);

------------------------------------------------------------------------------
-- Names
------------------------------------------------------------------------------

-- validate_queue_name raises invalid_name (42602) unless queue_name is a
-- lowercase identifier short enough for every table, index and sequence
-- derived from it.
CREATE FUNCTION pgmq.validate_queue_name(queue_name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
    IF queue_name IS NULL OR queue_name !~ '^[a-z_][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'invalid queue name %: it must match ^[a-z_][a-z0-9_]*$ (lowercase letters, digits and underscores, not starting with a digit)',
            coalesce(quote_literal(queue_name), 'NULL')
            USING ERRCODE = 'invalid_name';
    END IF;
    IF octet_length(queue_name) > 47 THEN
        RAISE EXCEPTION 'invalid queue name %: it is % characters long, the maximum is 47 (the derived name archived_at_idx_<name> must fit in 63 bytes)',
            quote_literal(queue_name), octet_length(queue_name)
            USING ERRCODE = 'invalid_name';
    END IF;
END;
$fn$;

-- format_table_name returns the name of a queue's table: prefix 'q' for the
-- queue, 'a' for its archive. It validates the queue name first.
CREATE FUNCTION pgmq.format_table_name(queue_name text, prefix text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    RETURN prefix || '_' || queue_name;
END;
$fn$;

------------------------------------------------------------------------------
-- Queue management
------------------------------------------------------------------------------

-- _create_queue creates the queue table, its archive and their indexes, and
-- records the queue in meta. Idempotent; concurrent calls for one name are
-- serialized by a transaction-scoped advisory lock.
CREATE FUNCTION pgmq._create_queue(queue_name text, unlogged boolean)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
    qtable text := pgmq.format_table_name(queue_name, 'q');
    atable text := pgmq.format_table_name(queue_name, 'a');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('pgmq.queue_' || queue_name));

    EXECUTE format(
        $sql$
        CREATE %s TABLE IF NOT EXISTS pgmq.%I (
            msg_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            read_ct      integer NOT NULL DEFAULT 0,
            enqueued_at  timestamptz NOT NULL DEFAULT now(),
            last_read_at timestamptz,
            vt           timestamptz NOT NULL,
            message      jsonb,
            headers      jsonb
        )
        $sql$,
        CASE WHEN unlogged THEN 'UNLOGGED' ELSE '' END, qtable);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt)', qtable || '_vt_idx', qtable);

    EXECUTE format(
        $sql$
        CREATE TABLE IF NOT EXISTS pgmq.%I (
            msg_id       bigint PRIMARY KEY,
            read_ct      integer NOT NULL DEFAULT 0,
            enqueued_at  timestamptz NOT NULL DEFAULT now(),
            last_read_at timestamptz,
            archived_at  timestamptz NOT NULL DEFAULT now(),
            vt           timestamptz NOT NULL,
            message      jsonb,
            headers      jsonb
        )
        $sql$,
        atable);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)', 'archived_at_idx_' || queue_name, atable);

    INSERT INTO pgmq.meta AS m (queue_name, is_partitioned, is_unlogged)
    VALUES (queue_name, false, unlogged)
    ON CONFLICT ON CONSTRAINT meta_queue_name_key DO NOTHING;
END;
$fn$;

-- create makes a queue (a no-op when it exists).
CREATE FUNCTION pgmq.create(queue_name text)
RETURNS void
LANGUAGE sql
AS $fn$ SELECT pgmq._create_queue($1, false) $fn$;

-- create_non_partitioned is create, named explicitly.
CREATE FUNCTION pgmq.create_non_partitioned(queue_name text)
RETURNS void
LANGUAGE sql
AS $fn$ SELECT pgmq._create_queue($1, false) $fn$;

-- create_unlogged makes a queue whose table is UNLOGGED: faster, but emptied
-- after a crash.
CREATE FUNCTION pgmq.create_unlogged(queue_name text)
RETURNS void
LANGUAGE sql
AS $fn$ SELECT pgmq._create_queue($1, true) $fn$;

-- drop_queue removes a queue, its archive and its meta row. It returns false
-- when there was no such queue.
CREATE FUNCTION pgmq.drop_queue(queue_name text)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
    qtable text := pgmq.format_table_name(queue_name, 'q');
    atable text := pgmq.format_table_name(queue_name, 'a');
    existed boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('pgmq.queue_' || queue_name));
    existed := to_regclass(format('pgmq.%I', qtable)) IS NOT NULL;
    EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', qtable);
    EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', atable);
    DELETE FROM pgmq.meta AS m WHERE m.queue_name = drop_queue.queue_name;
    IF NOT existed THEN
        RAISE NOTICE 'pgmq queue % does not exist', quote_literal(queue_name);
    END IF;
    RETURN existed;
END;
$fn$;

-- purge_queue deletes every message of a queue (not its archive) and returns
-- how many it deleted.
CREATE FUNCTION pgmq.purge_queue(queue_name text)
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
    purged bigint;
BEGIN
    EXECUTE format(
        'WITH gone AS (DELETE FROM pgmq.%I RETURNING 1) SELECT count(*) FROM gone',
        pgmq.format_table_name(queue_name, 'q'))
    INTO purged;
    RETURN purged;
END;
$fn$;

-- list_queues returns every queue's meta row.
CREATE FUNCTION pgmq.list_queues()
RETURNS SETOF pgmq.queue_record
LANGUAGE sql STABLE
AS $fn$
    SELECT m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at
    FROM pgmq.meta AS m
    ORDER BY m.queue_name
$fn$;

------------------------------------------------------------------------------
-- Sending
------------------------------------------------------------------------------

-- send inserts one message that becomes visible at delay and returns its id.
-- The other send overloads fill in headers (NULL) and delay (now, or now plus
-- a number of seconds).
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
        pgmq.format_table_name(queue_name, 'q'))
    USING delay, msg, headers;
END;
$fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.send($1, $2, NULL::jsonb, clock_timestamp()) $fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.send($1, $2, $3, clock_timestamp()) $fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.send($1, $2, NULL::jsonb, clock_timestamp() + make_interval(secs => $3)) $fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay timestamptz)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.send($1, $2, NULL::jsonb, $3) $fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.send($1, $2, $3, clock_timestamp() + make_interval(secs => $4)) $fn$;

-- send_batch inserts several messages, all visible at delay, and returns
-- their ids in the order of msgs. headers, when given, pairs with msgs by
-- position and must have the same length. The other overloads fill in
-- headers and delay as send's do.
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF coalesce(cardinality(msgs), 0) = 0 THEN
        RAISE EXCEPTION 'send_batch: msgs must be a non-empty array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF headers IS NOT NULL AND cardinality(headers) <> cardinality(msgs) THEN
        RAISE EXCEPTION 'send_batch: headers has % elements but msgs has %; they must match',
            cardinality(headers), cardinality(msgs)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY EXECUTE format(
        $sql$
        INSERT INTO pgmq.%I (vt, message, headers)
        SELECT $1, m.msg, h.header
        FROM unnest($2) WITH ORDINALITY AS m (msg, pos)
        LEFT JOIN unnest($3) WITH ORDINALITY AS h (header, pos) USING (pos)
        ORDER BY pos
        RETURNING msg_id
        $sql$,
        pgmq.format_table_name(queue_name, 'q'))
    USING delay, msgs, headers;
END;
$fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[])
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.send_batch($1, $2, NULL::jsonb[], clock_timestamp()) $fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[])
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.send_batch($1, $2, $3, clock_timestamp()) $fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.send_batch($1, $2, NULL::jsonb[], clock_timestamp() + make_interval(secs => $3)) $fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamptz)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.send_batch($1, $2, NULL::jsonb[], $3) $fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS SETOF bigint
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.send_batch($1, $2, $3, clock_timestamp() + make_interval(secs => $4)) $fn$;

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------

-- read claims up to qty visible messages, oldest first, skipping rows other
-- transactions hold: it sets their vt (invisible until then), counts the
-- read and returns them in msg_id order. conditional, when not '{}', keeps
-- only messages that contain it (jsonb @>).
CREATE FUNCTION pgmq.read(queue_name text, vt timestamptz, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        $sql$
        WITH picked AS (
            SELECT q.msg_id
            FROM pgmq.%1$I AS q
            WHERE q.vt <= clock_timestamp()
              AND ($3 = '{}'::jsonb OR q.message @> $3)
            ORDER BY q.msg_id
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE pgmq.%1$I AS q
            SET vt = $1, read_ct = q.read_ct + 1, last_read_at = clock_timestamp()
            FROM picked
            WHERE q.msg_id = picked.msg_id
            RETURNING q.msg_id, q.read_ct, q.enqueued_at, q.last_read_at, q.vt, q.message, q.headers
        )
        SELECT * FROM claimed ORDER BY msg_id
        $sql$,
        pgmq.format_table_name(queue_name, 'q'))
    USING vt, qty, coalesce(conditional, '{}'::jsonb);
END;
$fn$;

-- read with vt in seconds from now.
CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.read($1, clock_timestamp() + make_interval(secs => $2), $3, $4) $fn$;

-- read_with_poll reads like read; while nothing is visible it retries every
-- poll_interval_ms for up to max_poll_seconds, then returns what it got.
CREATE FUNCTION pgmq.read_with_poll(
    queue_name text,
    vt timestamptz,
    qty integer,
    max_poll_seconds integer DEFAULT 5,
    poll_interval_ms integer DEFAULT 100,
    conditional jsonb DEFAULT '{}'
)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
DECLARE
    give_up_at timestamptz := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
    LOOP
        RETURN QUERY SELECT * FROM pgmq.read(queue_name, vt, qty, conditional);
        IF FOUND OR clock_timestamp() >= give_up_at THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(poll_interval_ms / 1000.0);
    END LOOP;
END;
$fn$;

-- read_with_poll with vt in seconds, counted from the read that succeeds.
CREATE FUNCTION pgmq.read_with_poll(
    queue_name text,
    vt integer,
    qty integer,
    max_poll_seconds integer DEFAULT 5,
    poll_interval_ms integer DEFAULT 100,
    conditional jsonb DEFAULT '{}'
)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
DECLARE
    give_up_at timestamptz := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
    LOOP
        RETURN QUERY SELECT * FROM pgmq.read(queue_name, vt, qty, conditional);
        IF FOUND OR clock_timestamp() >= give_up_at THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(poll_interval_ms / 1000.0);
    END LOOP;
END;
$fn$;

-- pop deletes up to qty visible messages, oldest first, and returns them
-- (at-most-once delivery).
CREATE FUNCTION pgmq.pop(queue_name text, qty integer DEFAULT 1)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        $sql$
        WITH picked AS (
            SELECT q.msg_id
            FROM pgmq.%1$I AS q
            WHERE q.vt <= clock_timestamp()
            ORDER BY q.msg_id
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ), popped AS (
            DELETE FROM pgmq.%1$I AS q
            USING picked
            WHERE q.msg_id = picked.msg_id
            RETURNING q.msg_id, q.read_ct, q.enqueued_at, q.last_read_at, q.vt, q.message, q.headers
        )
        SELECT * FROM popped ORDER BY msg_id
        $sql$,
        pgmq.format_table_name(queue_name, 'q'))
    USING qty;
END;
$fn$;

------------------------------------------------------------------------------
-- Deleting, archiving, visibility
--
-- Each of these has overloads for one id (bigint) and for several (bigint[]).
-- sqlc's catalog sees such a pair as a duplicate definition, so the second of
-- each pair is CREATE OR REPLACE (a plain CREATE for PostgreSQL, which tells
-- them apart); the bigint[] forms come last because they are the ones the Go
-- client calls, and sqlc keeps the last.
------------------------------------------------------------------------------

-- delete removes one message; false when it was not there.
CREATE FUNCTION pgmq.delete(queue_name text, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
    found_id bigint;
BEGIN
    EXECUTE format('DELETE FROM pgmq.%I AS q WHERE q.msg_id = $1 RETURNING q.msg_id',
        pgmq.format_table_name(queue_name, 'q'))
    INTO found_id
    USING msg_id;
    RETURN found_id IS NOT NULL;
END;
$fn$;

-- delete removes several messages and returns the ids it found.
CREATE OR REPLACE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN QUERY EXECUTE format('DELETE FROM pgmq.%I AS q WHERE q.msg_id = ANY($1) RETURNING q.msg_id',
        pgmq.format_table_name(queue_name, 'q'))
    USING msg_ids;
END;
$fn$;

-- archive moves one message to the archive; false when it was not there.
CREATE FUNCTION pgmq.archive(queue_name text, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN EXISTS (SELECT 1 FROM pgmq.archive(queue_name, ARRAY[msg_id]));
END;
$fn$;

-- archive moves several messages to the queue's archive table, in one
-- statement, and returns the ids it moved.
CREATE OR REPLACE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        $sql$
        WITH moved AS (
            DELETE FROM pgmq.%I AS q
            WHERE q.msg_id = ANY($1)
            RETURNING q.msg_id, q.read_ct, q.enqueued_at, q.last_read_at, q.vt, q.message, q.headers
        )
        INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
        SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM moved
        RETURNING msg_id
        $sql$,
        pgmq.format_table_name(queue_name, 'q'), pgmq.format_table_name(queue_name, 'a'))
    USING msg_ids;
END;
$fn$;

-- set_vt sets when a message becomes visible and returns it (no row when the
-- message is not there). The overloads take one id or several, and vt as a
-- time or as seconds from now.
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt timestamptz)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN QUERY SELECT * FROM pgmq.set_vt(queue_name, ARRAY[msg_id], vt);
END;
$fn$;

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN QUERY SELECT * FROM pgmq.set_vt(queue_name, ARRAY[msg_id], vt);
END;
$fn$;

CREATE OR REPLACE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt timestamptz)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        $sql$
        WITH moved AS (
            UPDATE pgmq.%I AS q
            SET vt = $1
            WHERE q.msg_id = ANY($2)
            RETURNING q.msg_id, q.read_ct, q.enqueued_at, q.last_read_at, q.vt, q.message, q.headers
        )
        SELECT * FROM moved ORDER BY msg_id
        $sql$,
        pgmq.format_table_name(queue_name, 'q'))
    USING vt, msg_ids;
END;
$fn$;

CREATE OR REPLACE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt integer)
RETURNS SETOF pgmq.message_record
LANGUAGE sql
AS $fn$ SELECT * FROM pgmq.set_vt($1, $2, clock_timestamp() + make_interval(secs => $3)) $fn$;

------------------------------------------------------------------------------
-- Metrics
------------------------------------------------------------------------------

-- metrics reports a queue's length, how many messages are visible, the ages
-- of its newest and oldest messages (NULL when empty) and how many messages
-- it has ever been given (its msg_id sequence).
CREATE FUNCTION pgmq.metrics(queue_name text)
RETURNS pgmq.metrics_result
LANGUAGE plpgsql
AS $fn$
DECLARE
    qtable text := pgmq.format_table_name(queue_name, 'q');
    result pgmq.metrics_result;
BEGIN
    EXECUTE format(
        $sql$
        SELECT
            $1,
            count(*),
            extract(epoch FROM clock_timestamp() - max(q.enqueued_at))::integer,
            extract(epoch FROM clock_timestamp() - min(q.enqueued_at))::integer,
            coalesce(pg_sequence_last_value(pg_get_serial_sequence($2, 'msg_id')::regclass), 0),
            clock_timestamp(),
            count(*) FILTER (WHERE q.vt <= clock_timestamp())
        FROM pgmq.%I AS q
        $sql$,
        qtable)
    INTO result
    USING queue_name, format('pgmq.%I', qtable);
    RETURN result;
END;
$fn$;

-- metrics_all reports metrics() for every queue.
CREATE FUNCTION pgmq.metrics_all()
RETURNS SETOF pgmq.metrics_result
LANGUAGE sql
AS $fn$
    SELECT r.*
    FROM pgmq.meta AS m, LATERAL pgmq.metrics(m.queue_name) AS r
    ORDER BY m.queue_name
$fn$;
