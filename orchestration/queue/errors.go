package queue

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskerops/tasker/internal/dbtx"
)

// Errors the client returns, wrapped with the operation and the queue.
var (
	// ErrInvalidName: the queue name breaks the naming rule (see ValidateName).
	ErrInvalidName = errors.New("invalid queue name")
	// ErrQueueNotFound: the queue does not exist. It matches dbtx.ErrNotFound.
	ErrQueueNotFound = fmt.Errorf("queue does not exist: %w", dbtx.ErrNotFound)
	// ErrMessageNotFound: the message is not in the queue (never sent, or
	// deleted or archived since). It matches dbtx.ErrNotFound.
	ErrMessageNotFound = fmt.Errorf("message not in queue: %w", dbtx.ErrNotFound)
)

// SQLSTATE codes the client turns into its own errors.
const (
	sqlstateUndefinedTable = "42P01" // pgmq.q_<name> is missing: no such queue
	sqlstateInvalidName    = "42602" // migration 0001's name check
)

// interpretError is the one place where driver errors become the package's:
// no row becomes ErrMessageNotFound, a missing queue table ErrQueueNotFound,
// the SQL side's name check ErrInvalidName. Every error is wrapped with the
// operation and the queue.
func interpretError(err error, op, queue string) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("queue %q: %s: %w", queue, op, ErrMessageNotFound)
	case errors.As(err, &pgErr) && pgErr.Code == sqlstateUndefinedTable:
		return fmt.Errorf("queue %q: %s: %w: %w", queue, op, ErrQueueNotFound, err)
	case errors.As(err, &pgErr) && pgErr.Code == sqlstateInvalidName:
		return fmt.Errorf("queue %q: %s: %w: %w", queue, op, ErrInvalidName, err)
	default:
		return fmt.Errorf("queue %q: %s: %w", queue, op, err)
	}
}

// seconds turns a duration into PGMQ's whole seconds, rounding up so that a
// message is never visible earlier than asked: 0 stays 0, 1ns becomes 1.
func seconds(d time.Duration, what string) (int32, error) {
	if d < 0 {
		return 0, fmt.Errorf("%s must not be negative, got %s", what, d)
	}
	if d > math.MaxInt32*time.Second {
		return 0, fmt.Errorf("%s %s is longer than PGMQ's limit of %d seconds", what, d, math.MaxInt32)
	}
	return int32((d + time.Second - 1) / time.Second), nil
}
