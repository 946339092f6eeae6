// Package queue is tasker's client for PGMQ queues: create, send (with a
// NOTIFY that wakes consumers), read with a visibility timeout, delete,
// archive, re-time, measure and purge.
//
// It works the same whether the server runs the pgmq extension or the
// compatible functions and tables installed by migration 0001: the
// administrative operations call PGMQ's SQL API (pgmq.create, pgmq.metrics,
// ...), and the hot ones (send, read, delete, archive) run plain SQL on the
// queue tables, whose layout every PGMQ version since 1.5 shares (direct.go). Every method takes a DBTX, so it runs
// on a pool or inside the caller's transaction: a send is durable, and its
// notification delivered, only when that transaction commits.
package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskerops/tasker/orchestration/queue/internal/pgmqsql"
)

// DBTX runs the client's SQL: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// MaxNameLength is the longest queue name: PGMQ derives identifiers such as
// archived_at_idx_<name> from it, and PostgreSQL cuts identifiers at 63
// bytes. It is also the real pgmq extension's limit.
const MaxNameLength = 47

// ChannelPrefix starts the LISTEN/NOTIFY channel of every queue.
const ChannelPrefix = "tasker_"

// namePattern is the rule for queue names, the same as the SQL side's.
var namePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ValidateName reports whether queue is a valid queue name: lowercase
// letters, digits and underscores, not starting with a digit
// (^[a-z_][a-z0-9_]*$), at most MaxNameLength characters. The error wraps
// ErrInvalidName and says which rule the name broke.
func ValidateName(queue string) error {
	if !namePattern.MatchString(queue) {
		return fmt.Errorf("%w %q: it must match %s (lowercase letters, digits and underscores, not starting with a digit)",
			ErrInvalidName, queue, namePattern)
	}
	if len(queue) > MaxNameLength {
		return fmt.Errorf("%w %q: it is %d characters long, the maximum is %d (derived PostgreSQL identifiers must fit in 63 bytes)",
			ErrInvalidName, queue, len(queue), MaxNameLength)
	}
	return nil
}

// Channel returns the LISTEN/NOTIFY channel on which Send and SendBatch
// announce new messages on queue. The notification's payload is the queue
// name.
func Channel(queue string) string { return ChannelPrefix + queue }

// Message is a message as a read returns it.
type Message struct {
	// ID is the message's id in its queue (PGMQ's msg_id).
	ID int64
	// ReadCount is how many times the message has been read, this read
	// included.
	ReadCount int
	// EnqueuedAt is when the message was sent.
	EnqueuedAt time.Time
	// VisibleAt is when the message becomes visible to readers again
	// (PGMQ's vt), unless it is deleted or archived before.
	VisibleAt time.Time
	// Body is the message's JSON.
	Body json.RawMessage
}

// Metrics describes a queue at one moment.
type Metrics struct {
	// Queue is the queue's name.
	Queue string
	// Length counts the messages in the queue, visible or not.
	Length int64
	// Visible counts the messages a read would return now.
	Visible int64
	// NewestAge and OldestAge are the ages of the newest and the oldest
	// message, in whole seconds; zero when the queue is empty.
	NewestAge, OldestAge time.Duration
	// TotalMessages counts the messages ever sent to the queue.
	TotalMessages int64
	// ScrapedAt is when the database took the measurements.
	ScrapedAt time.Time
}

// Client calls PGMQ's SQL API. It holds no connection and no state; one
// Client serves any number of goroutines.
type Client struct {
	queries *pgmqsql.Queries
	// sql caches each queue's statements for the hot operations (direct.go).
	sql sqlCache
}

// New returns a Client.
func New() *Client {
	return &Client{queries: pgmqsql.New()}
}
