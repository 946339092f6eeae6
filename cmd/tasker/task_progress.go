package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/api"
)

// progressLine describes a task snapshot for a watch, with the steps that
// changed since prev (none when prev is nil):
//
//	[00:01.2] 3/4 steps complete · steps_in_process · linear_step_3 → complete · running: linear_step_4
func progressLine(elapsed time.Duration, prev, cur *api.Task) string {
	parts := []string{
		fmt.Sprintf("[%s] %d/%d steps complete", formatElapsed(elapsed), cur.CompletedSteps, cur.TotalSteps),
		string(cur.State),
	}
	if changes := stepChanges(prev, cur); len(changes) > 0 {
		parts = append(parts, strings.Join(changes, ", "))
	}
	if running := stepsIn(cur, orchestration.StepInProgress); len(running) > 0 {
		parts = append(parts, "running: "+strings.Join(running, ", "))
	}
	if queued := stepsIn(cur, orchestration.StepEnqueued); len(queued) > 0 {
		parts = append(parts, "queued: "+strings.Join(queued, ", "))
	}
	return strings.Join(parts, " · ")
}

// snapshotChanged reports whether anything a watch shows differs between
// two snapshots of a task.
func snapshotChanged(prev, cur *api.Task) bool {
	return prev.State != cur.State || prev.CompletedSteps != cur.CompletedSteps ||
		prev.TotalSteps != cur.TotalSteps || len(stepChanges(prev, cur)) > 0
}

// stepChanges describes each step whose state or attempt count differs
// from prev, e.g. "linear_step_3 → complete".
func stepChanges(prev, cur *api.Task) []string {
	if prev == nil {
		return nil
	}
	var changes []string
	for i := range cur.Steps {
		s := &cur.Steps[i]
		before := prev.Step(s.Name)
		if before != nil && before.State == s.State && before.Attempts == s.Attempts {
			continue
		}
		change := s.Name + " → " + string(s.State)
		switch {
		case s.State == orchestration.StepWaitingForRetry && s.Error != nil:
			change += fmt.Sprintf(" (attempt %d/%d failed: %s)", s.Attempts, s.MaxAttempts, s.Error.Code)
		case s.State == orchestration.StepError && s.Error != nil:
			change += " (" + s.Error.Code + ")"
		case s.State == orchestration.StepInProgress && s.Attempts > 1:
			change += fmt.Sprintf(" (attempt %d/%d)", s.Attempts, s.MaxAttempts)
		}
		changes = append(changes, change)
	}
	return changes
}

// stepsIn names the task's steps in the given state, in template order.
func stepsIn(task *api.Task, state orchestration.StepState) []string {
	var names []string
	for _, s := range task.Steps {
		if s.State == state {
			names = append(names, s.Name)
		}
	}
	return names
}

// formatElapsed formats a watch's elapsed time as mm:ss.t (h:mm:ss.t past
// an hour).
func formatElapsed(d time.Duration) string {
	d = max(d, 0)
	hours, minutes := int(d/time.Hour), int(d/time.Minute)%60
	seconds, tenths := int(d/time.Second)%60, int(d/(100*time.Millisecond))%10
	if hours > 0 {
		return fmt.Sprintf("%d:%02d:%02d.%d", hours, minutes, seconds, tenths)
	}
	return fmt.Sprintf("%02d:%02d.%d", minutes, seconds, tenths)
}

// renderWatchSummary is what a watch prints when the task has ended: the
// status and duration, then the last step's result for a task that
// succeeded, or each failed step's error.
func renderWatchSummary(task *api.Task) string {
	var b strings.Builder
	fmt.Fprintf(&b, "task %s %s after %s\n", task.UUID, task.State, taskDuration(task))
	if watchOutcome(task) == nil {
		if name, result := lastResult(task); name != "" {
			fmt.Fprintf(&b, "result of %s: %s\n", name, result)
		}
		return b.String()
	}
	for _, s := range task.Steps {
		if s.State == orchestration.StepError {
			fmt.Fprintf(&b, "  %s failed after %d/%d attempts: %s\n", s.Name, s.Attempts, s.MaxAttempts, stepErrorText(s.Error))
		}
	}
	return b.String()
}

// watchOutcome is nil for a task that succeeded (complete or
// resolved_manually) and otherwise an error naming its status and each
// failed step, e.g. "task ended blocked_by_failures: step x failed: CODE: message".
func watchOutcome(task *api.Task) error {
	if task.State == orchestration.TaskComplete || task.State == orchestration.TaskResolvedManually {
		return nil
	}
	msg := "task ended " + string(task.State)
	var failed []string
	for _, s := range task.Steps {
		if s.State != orchestration.StepError {
			continue
		}
		if s.Error == nil {
			failed = append(failed, "step "+s.Name+" failed")
		} else {
			failed = append(failed, "step "+s.Name+" failed: "+stepErrorText(s.Error))
		}
	}
	if len(failed) > 0 {
		msg += ": " + strings.Join(failed, "; ")
	}
	return errors.New(msg)
}

// lastResult returns the last step (in template order) that has a result,
// and the result as compact JSON.
func lastResult(task *api.Task) (string, string) {
	for _, s := range slices.Backward(task.Steps) {
		if len(s.Results) == 0 {
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, s.Results); err != nil {
			return s.Name, string(s.Results)
		}
		return s.Name, compact.String()
	}
	return "", ""
}
