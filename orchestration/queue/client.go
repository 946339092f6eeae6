package queue

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskerops/tasker/orchestration/queue/internal/pgmqsql"
)

// Create makes queue, with its archive, unless it exists already.
func (c *Client) Create(ctx context.Context, db DBTX, queue string) error {
	if err := ValidateName(queue); err != nil {
		return err
	}
	return interpretError(c.queries.CreateQueue(ctx, db, queue), "create", queue)
}

// Send sends body, encoded with encoding/json (pass a json.RawMessage to
// send JSON as is), to queue; the message becomes visible after delay,
// rounded up to whole seconds. In the same statement it notifies
// Channel(queue), so the notification is delivered when db's transaction
// commits, and not at all when it rolls back. PostgreSQL folds identical
// notifications of one transaction, so any number of sends to one queue in a
// transaction wake its listeners once. Send returns the message's id.
func (c *Client) Send(ctx context.Context, db DBTX, queue string, body any, delay time.Duration) (int64, error) {
	if err := ValidateName(queue); err != nil {
		return 0, err
	}
	message, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("queue %q: send: encoding the message: %w", queue, err)
	}
	delaySeconds, err := seconds(delay, "delay")
	if err != nil {
		return 0, fmt.Errorf("queue %q: send: %w", queue, err)
	}
	var id int64
	err = db.QueryRow(ctx, c.statements(queue).send, delaySeconds, message, Channel(queue), queue).Scan(&id)
	return id, interpretError(err, "send", queue)
}

// SendBatch sends bodies to queue in one statement, all visible after delay,
// and notifies Channel(queue) once, as Send does. It returns the ids in the
// order of bodies; with no bodies it does nothing.
func (c *Client) SendBatch(ctx context.Context, db DBTX, queue string, bodies []json.RawMessage, delay time.Duration) ([]int64, error) {
	if err := ValidateName(queue); err != nil {
		return nil, err
	}
	if len(bodies) == 0 {
		return nil, nil
	}
	for i, body := range bodies {
		if !json.Valid(body) {
			return nil, fmt.Errorf("queue %q: send batch: message %d is not valid JSON", queue, i)
		}
	}
	delaySeconds, err := seconds(delay, "delay")
	if err != nil {
		return nil, fmt.Errorf("queue %q: send batch: %w", queue, err)
	}
	rows, err := db.Query(ctx, c.statements(queue).sendBatch, delaySeconds, bodies, Channel(queue), queue)
	if err != nil {
		return nil, interpretError(err, "send batch", queue)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, interpretError(err, "send batch", queue)
}

// Read claims up to batch visible messages of queue, those visible longest
// first (by visibility time, which for a message never read is when it was
// sent, or when its delay ended; PGMQ's own read goes by id), skipping
// messages other transactions hold, and returns them in id order. Each stays
// invisible to other reads for visibility (rounded up to whole seconds), and
// becomes visible again then unless deleted or archived. Read returns an
// empty slice when nothing is visible.
func (c *Client) Read(ctx context.Context, db DBTX, queue string, visibility time.Duration, batch int) ([]Message, error) {
	if err := ValidateName(queue); err != nil {
		return nil, err
	}
	if batch < 1 || batch > math.MaxInt32 {
		return nil, fmt.Errorf("queue %q: read: batch must be between 1 and %d, got %d", queue, math.MaxInt32, batch)
	}
	vtSeconds, err := seconds(visibility, "visibility timeout")
	if err != nil {
		return nil, fmt.Errorf("queue %q: read: %w", queue, err)
	}
	rows, err := db.Query(ctx, c.statements(queue).read, vtSeconds, int32(batch))
	return collectMessages(rows, err, "read", queue)
}

// ReadLocked returns up to batch visible messages of queue, the same ones
// Read would claim, in id order, but instead of hiding them it locks them
// (FOR UPDATE, skipping messages other transactions hold) until the
// transaction db belongs to ends, and changes nothing: their ReadCount and
// VisibleAt are as stored. It is for a transaction that consumes what it
// reads: it deletes the messages it used and hides (Hide) the others before
// it commits, so a message it used is written once, by its deletion, and
// if the transaction fails every message is left as it was. Outside a
// transaction the locks end with the statement.
func (c *Client) ReadLocked(ctx context.Context, db DBTX, queue string, batch int) ([]Message, error) {
	if err := ValidateName(queue); err != nil {
		return nil, err
	}
	if batch < 1 || batch > math.MaxInt32 {
		return nil, fmt.Errorf("queue %q: read locked: batch must be between 1 and %d, got %d", queue, math.MaxInt32, batch)
	}
	rows, err := db.Query(ctx, c.statements(queue).readLocked, int32(batch))
	return collectMessages(rows, err, "read locked", queue)
}

// Hide does to the messages ids of queue what Read does to the messages it
// claims: each becomes invisible for visibility (rounded up to whole
// seconds) and its read count goes up by one. It returns the messages it
// found, in id order, as Read would have returned them.
func (c *Client) Hide(ctx context.Context, db DBTX, queue string, visibility time.Duration, ids ...int64) ([]Message, error) {
	if err := ValidateName(queue); err != nil {
		return nil, err
	}
	vtSeconds, err := seconds(visibility, "visibility timeout")
	if err != nil {
		return nil, fmt.Errorf("queue %q: hide: %w", queue, err)
	}
	if len(ids) == 0 {
		return []Message{}, nil
	}
	rows, err := db.Query(ctx, c.statements(queue).hide, vtSeconds, ids)
	return collectMessages(rows, err, "hide", queue)
}

// collectMessages reads the messages a read statement returned (id, read
// count, enqueued at, visible at, body as text) and sorts them by id.
func collectMessages(rows pgx.Rows, err error, op, queue string) ([]Message, error) {
	if err != nil {
		return nil, interpretError(err, op, queue)
	}
	messages, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Message, error) {
		var (
			m    Message
			body string
			read int32
		)
		err := row.Scan(&m.ID, &read, &m.EnqueuedAt, &m.VisibleAt, &body)
		m.ReadCount, m.Body = int(read), json.RawMessage(body)
		return m, err
	})
	if err != nil {
		return nil, interpretError(err, op, queue)
	}
	slices.SortFunc(messages, func(a, b Message) int { return cmp.Compare(a.ID, b.ID) })
	return messages, nil
}

// Delete removes the messages ids from queue and returns how many it
// found; ids that are not in the queue are not an error.
func (c *Client) Delete(ctx context.Context, db DBTX, queue string, ids ...int64) (int, error) {
	if err := ValidateName(queue); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var n int64
	err := db.QueryRow(ctx, c.statements(queue).delete, ids).Scan(&n)
	return int(n), interpretError(err, "delete", queue)
}

// Archive moves the messages ids from queue to its archive table
// (pgmq.a_<queue>) in one statement and returns how many it moved; ids that
// are not in the queue are not an error.
func (c *Client) Archive(ctx context.Context, db DBTX, queue string, ids ...int64) (int, error) {
	if err := ValidateName(queue); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var n int64
	err := db.QueryRow(ctx, c.statements(queue).archive, ids).Scan(&n)
	return int(n), interpretError(err, "archive", queue)
}

// SetVisibility makes message id of queue visible after visibleIn (rounded
// up to whole seconds; 0 makes it visible now) and returns it. It returns
// ErrMessageNotFound when the message is not in the queue.
func (c *Client) SetVisibility(ctx context.Context, db DBTX, queue string, id int64, visibleIn time.Duration) (Message, error) {
	if err := ValidateName(queue); err != nil {
		return Message{}, err
	}
	vtSeconds, err := seconds(visibleIn, "visibility timeout")
	if err != nil {
		return Message{}, fmt.Errorf("queue %q: set visibility of message %d: %w", queue, id, err)
	}
	row, err := c.queries.SetVisibility(ctx, db, pgmqsql.SetVisibilityParams{
		QueueName: queue,
		MsgID:     id,
		VTSeconds: vtSeconds,
	})
	if err != nil {
		return Message{}, interpretError(err, fmt.Sprintf("set visibility of message %d", id), queue)
	}
	return Message{
		ID:         row.MsgID,
		ReadCount:  int(row.ReadCt),
		EnqueuedAt: row.EnqueuedAt,
		VisibleAt:  row.VT,
		Body:       json.RawMessage(row.Message),
	}, nil
}

// Metrics measures queue.
func (c *Client) Metrics(ctx context.Context, db DBTX, queue string) (Metrics, error) {
	if err := ValidateName(queue); err != nil {
		return Metrics{}, err
	}
	row, err := c.queries.QueueMetrics(ctx, db, queue)
	if err != nil {
		return Metrics{}, interpretError(err, "metrics", queue)
	}
	return Metrics{
		Queue:         row.QueueName,
		Length:        row.QueueLength,
		Visible:       row.QueueVisibleLength,
		NewestAge:     time.Duration(row.NewestMsgAgeSec) * time.Second,
		OldestAge:     time.Duration(row.OldestMsgAgeSec) * time.Second,
		TotalMessages: row.TotalMessages,
		ScrapedAt:     row.ScrapeTime,
	}, nil
}

// Purge deletes every message of queue, visible or not (the archive stays),
// and returns how many it deleted.
func (c *Client) Purge(ctx context.Context, db DBTX, queue string) (int64, error) {
	if err := ValidateName(queue); err != nil {
		return 0, err
	}
	n, err := c.queries.PurgeQueue(ctx, db, queue)
	return n, interpretError(err, "purge", queue)
}
