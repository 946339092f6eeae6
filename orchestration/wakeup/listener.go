// Package wakeup turns PostgreSQL LISTEN/NOTIFY into wake-up calls for
// polling loops. A notification only says "look now"; the loops still poll
// on a timer, so a missed notification delays work but never loses it.
package wakeup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config configures a Listener.
type Config struct {
	// ConnConfig is where to connect; the Listener keeps one dedicated
	// connection (LISTEN does not work through a pool). Required.
	ConnConfig *pgx.ConnConfig
	// Channels to LISTEN on. Required.
	Channels []string
	// OnNotify is called for every notification, from the Listener's
	// goroutine; it must not block. After every (re)connect it is also called
	// once per channel with an empty payload, since notifications sent while
	// disconnected were lost. Required.
	OnNotify func(channel, payload string)
	// Logger receives connection problems. Default slog.Default().
	Logger *slog.Logger
	// BackoffMin and BackoffMax bound the pause between reconnect attempts.
	// Defaults 100ms and 5s.
	BackoffMin, BackoffMax time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Second
	}
	return c
}

// Listener keeps a LISTEN connection open until its context ends.
type Listener struct {
	cfg Config
	// ready is closed once the first LISTEN succeeded.
	ready chan struct{}
}

// New returns a Listener; call Run to start it.
func New(cfg Config) (*Listener, error) {
	if cfg.ConnConfig == nil || len(cfg.Channels) == 0 || cfg.OnNotify == nil {
		return nil, errors.New("wakeup: ConnConfig, Channels and OnNotify are required")
	}
	return &Listener{cfg: cfg.withDefaults(), ready: make(chan struct{})}, nil
}

// Ready is closed once the Listener first listens on every channel.
func (l *Listener) Ready() <-chan struct{} { return l.ready }

// Run listens until ctx ends, reconnecting with backoff after any failure.
// It returns nil when ctx ends.
func (l *Listener) Run(ctx context.Context) error {
	backoff := l.cfg.BackoffMin
	first := true
	for ctx.Err() == nil {
		err := l.session(ctx, func() {
			backoff = l.cfg.BackoffMin
			if first {
				first = false
				close(l.ready)
			}
		})
		if ctx.Err() != nil {
			return nil //nolint:nilerr // the session ended because ctx did; that is a clean stop
		}
		l.cfg.Logger.WarnContext(ctx, "notification listener lost its connection; reconnecting", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, l.cfg.BackoffMax)
	}
	return nil
}

// session connects, listens and relays notifications until an error.
func (l *Listener) session(ctx context.Context, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, l.cfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	for _, channel := range l.cfg.Channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
			return fmt.Errorf("listening on %s: %w", channel, err)
		}
	}
	connected()
	for _, channel := range l.cfg.Channels {
		l.cfg.OnNotify(channel, "")
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		l.cfg.OnNotify(n.Channel, n.Payload)
	}
}
