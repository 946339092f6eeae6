package orchestration

import (
	"context"
	"sync"
	"time"

	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/wakeup"
)

// Run drives the engine until ctx ends: a results loop that processes
// orchestration_step_results (woken by NOTIFY, polling every PollInterval
// as the fallback), and a sweeper loop (every SweepInterval, and as soon as
// a retry this engine scheduled is due). Database failures are logged and
// retried with backoff; Run returns nil when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	resultsWake := newSignal()

	listener, err := wakeup.New(wakeup.Config{
		ConnConfig: e.pool.Config().ConnConfig.Copy(),
		Channels:   []string{queue.Channel(dispatch.ResultsQueue)},
		OnNotify:   func(string, string) { resultsWake.fire() },
		Logger:     e.log,
	})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = listener.Run(ctx) })
	wg.Go(func() { e.loop(ctx, "results", resultsWake.C(), e.cfg.PollInterval, e.resultsRound) })
	wg.Go(func() { e.loop(ctx, "sweeper", e.sweepWake.C(), e.cfg.SweepInterval, e.sweepRound) })
	e.log.InfoContext(ctx, "orchestrator running", "process_id", e.cfg.ProcessID)
	wg.Wait()
	return nil
}

// resultsRound processes results until a batch comes back short.
func (e *Engine) resultsRound(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := e.ProcessResults(ctx)
		if err != nil || n < e.cfg.ResultBatchSize {
			return err
		}
	}
	return nil
}

// sweepRound runs one sweep and logs what it recovered.
func (e *Engine) sweepRound(ctx context.Context) error {
	report, err := e.Sweep(ctx)
	if report.ClaimsRequeued > 0 || report.ClaimsFailed > 0 {
		e.log.WarnContext(ctx, "recovered steps from workers whose claims expired",
			"requeued", report.ClaimsRequeued, "failed", report.ClaimsFailed)
	}
	return err
}

// loop runs round whenever wake fires or every interval, backing off after
// failures, until ctx ends.
func (e *Engine) loop(ctx context.Context, name string, wake <-chan struct{}, interval time.Duration, round func(context.Context) error) {
	backoff := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
		if err := round(ctx); err != nil && ctx.Err() == nil {
			backoff = min(max(backoff*2, e.cfg.RetryBackoffMin), e.cfg.RetryBackoffMax)
			e.log.ErrorContext(ctx, "orchestrator loop failed; backing off", "loop", name, "error", err, "retry_in", backoff)
			resetTimer(timer, backoff)
			continue
		}
		backoff = 0
		resetTimer(timer, interval)
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	t.Reset(d)
}

// signal is a wake-up that coalesces: firing it many times before the
// receiver looks wakes the receiver once.
type signal struct{ c chan struct{} }

func newSignal() *signal { return &signal{c: make(chan struct{}, 1)} }

func (s *signal) fire() {
	select {
	case s.c <- struct{}{}:
	default:
	}
}

func (s *signal) C() <-chan struct{} { return s.c }

// timerSignal is a signal that can also be fired after a delay; only the
// earliest pending delay is kept.
type timerSignal struct {
	*signal
	mu    sync.Mutex
	due   time.Time
	timer *time.Timer
}

func newTimerSignal() *timerSignal { return &timerSignal{signal: newSignal()} }

// after fires the signal once d has passed, unless an earlier firing is
// already scheduled.
func (s *timerSignal) after(d time.Duration) {
	due := time.Now().Add(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil && !s.due.IsZero() && s.due.Before(due) && time.Now().Before(s.due) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.due = due
	s.timer = time.AfterFunc(d, s.fire)
}
