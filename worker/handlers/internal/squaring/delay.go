package squaring

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/taskerops/tasker/worker"
)

// MaxDelay bounds the delay_ms test hook (ten minutes).
const MaxDelay = 600000 * time.Millisecond

// Initialization is the optional handler initialization of a squaring step.
type Initialization struct {
	// DelayMs makes the handler wait this many milliseconds before it
	// computes. It is a test hook: end-to-end tests use it to stop a worker
	// in the middle of a step. At most 600000.
	DelayMs *int64 `json:"delay_ms,omitempty"`
}

// Delay reads the step's delay_ms: absent is zero; negative, above
// MaxDelay or not an integer is a permanent INVALID_INITIALIZATION.
func Delay(step *worker.TaskSequenceStep) (time.Duration, error) {
	var init Initialization
	if err := step.DecodeInitialization(&init); err != nil {
		return 0, worker.PermanentError(CodeInvalidInit, "delay_ms must be an integer number of milliseconds",
			map[string]string{"reason": err.Error()})
	}
	if init.DelayMs == nil {
		return 0, nil
	}
	if ms := *init.DelayMs; ms < 0 || ms > MaxDelay.Milliseconds() {
		return 0, worker.PermanentError(CodeInvalidInit,
			fmt.Sprintf("delay_ms must be between 0 and %d", MaxDelay.Milliseconds()),
			map[string]json.Number{"delay_ms": json.Number(strconv.FormatInt(*init.DelayMs, 10))})
	}
	return time.Duration(*init.DelayMs) * time.Millisecond, nil
}

// delay waits for the step's delay_ms, or returns the context's error,
// wrapped, when ctx ends first.
func (h *Handler) delay(ctx context.Context, step *worker.TaskSequenceStep) error {
	d, err := Delay(step)
	if err != nil || d == 0 {
		return err
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("step %q stopped during its %s delay: %w", h.step.Name, d, ctx.Err())
	}
}
