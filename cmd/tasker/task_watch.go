package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/api"
)

// defaultWatchInterval is how often a watch polls the task.
const defaultWatchInterval = 500 * time.Millisecond

// maxFetchFailures is how many polls in a row may fail (server restarting,
// network blip) before a watch gives up.
const maxFetchFailures = 3

func newTaskWatchCommand(client *clientOptions) *cobra.Command {
	var (
		interval time.Duration
		output   outputFormat
	)
	cmd := &cobra.Command{
		Use:   "watch UUID",
		Short: "Follow a task until it ends, a line per change, and exit with its outcome",
		Long: `Follow a task until it ends: print a line each time its status or a step changes,
then a summary (the last step's result, or each failed step's error).

The exit code is 0 when the task is complete or resolved_manually, and 1 when it is
cancelled, in error, or blocked_by_failures (which counts as ended: nothing changes
until a person retries or resolves a step). With -o json|yaml the progress goes to
standard error and the final task to standard output.`,
		Args: argsNamed("UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTaskArgs(output, args[0])
			if err != nil {
				return err
			}
			return client.run(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				return watchTask(ctx, cmd, c, id, interval, output)
			})
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", defaultWatchInterval, "how often to poll the task")
	addOutputFlag(cmd, &output)
	return cmd
}

// watchTask follows the task, prints how it ended, and returns an error
// unless it succeeded.
func watchTask(ctx context.Context, cmd *cobra.Command, c *api.Client, id uuid.UUID, interval time.Duration, format outputFormat) error {
	if interval <= 0 {
		return fmt.Errorf("--interval: must be positive, not %s", interval)
	}
	out, progress := cmd.OutOrStdout(), cmd.OutOrStdout()
	if format.structured() {
		progress = cmd.ErrOrStderr()
	}
	w := &watcher{
		fetch:    func(ctx context.Context) (*api.Task, error) { return c.GetTask(ctx, id) },
		interval: interval,
		clock:    realClock{},
		out:      progress,
		live:     isTerminal(progress),
	}
	task, err := w.run(ctx)
	if err != nil {
		return err
	}
	if err := printTask(out, task, format, renderWatchSummary); err != nil {
		return err
	}
	return watchOutcome(task)
}

// clock is a watch's time source; tests give a fake one so that a watch
// runs without sleeping.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// watcher polls a task until it ends and writes a progress line per change.
type watcher struct {
	// fetch returns the task's current snapshot.
	fetch func(context.Context) (*api.Task, error)
	// interval is the time between polls.
	interval time.Duration
	// clock measures the elapsed time and waits between polls.
	clock clock
	// out receives the progress lines.
	out io.Writer
	// live redraws a status line between changes (out is a terminal).
	live bool
	// drawn is true while a redrawable line is on screen.
	drawn bool
}

// run polls until the task ends (watchEnded) and returns its last snapshot.
// Once a snapshot has arrived, up to maxFetchFailures polls in a row may
// fail with an error that another try might not repeat.
func (w *watcher) run(ctx context.Context) (*api.Task, error) {
	defer w.clear()
	start := w.clock.Now()
	var prev *api.Task
	failures := 0
	for {
		task, err := w.fetch(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil && (prev == nil || !transient(err) || failures+1 >= maxFetchFailures):
			return nil, err
		case err != nil:
			failures++
		default:
			failures = 0
			w.show(w.clock.Now().Sub(start), prev, task)
			if watchEnded(task.State) {
				return task, nil
			}
			prev = task
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.clock.After(w.interval):
		}
	}
}

// show prints a line when the snapshot differs from the previous one; on a
// terminal it otherwise redraws the status line so the clock keeps moving.
func (w *watcher) show(elapsed time.Duration, prev, cur *api.Task) {
	w.clear()
	line := progressLine(elapsed, prev, cur)
	if prev == nil || snapshotChanged(prev, cur) {
		fmt.Fprintln(w.out, line)
		return
	}
	if w.live {
		fmt.Fprint(w.out, line)
		w.drawn = true
	}
}

// clear erases the redrawable line, if one is on screen.
func (w *watcher) clear() {
	if w.drawn {
		fmt.Fprint(w.out, "\r\x1b[K")
		w.drawn = false
	}
}

// watchEnded reports whether a watch stops at this status: a terminal one,
// or blocked_by_failures, which nothing changes without a person.
func watchEnded(state orchestration.TaskState) bool {
	return state.Terminal() || state == orchestration.TaskBlockedByFailures
}

// transient reports whether a failed poll is worth trying again: not a
// client error the server will repeat, nor the command being stopped.
func transient(err error) bool {
	if apiErr, ok := errors.AsType[*api.Error](err); ok {
		return apiErr.Status >= http.StatusInternalServerError
	}
	return !errors.Is(err, context.Canceled)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
