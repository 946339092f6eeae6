package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/taskerops/tasker/orchestration/api"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
)

// devPollInterval is how often `tasker dev` polls each example task.
const devPollInterval = 100 * time.Millisecond

// devResult is how one example task went.
type devResult struct {
	workflow string
	task     *api.Task
	err      error
}

// exampleContext reads the task context for a template from dir:
// <namespace>.json, or <namespace without "_workflow">.json (linear.json for
// linear_workflow). ok is false when there is none.
func exampleContext(dir string, t *workflowsv1alpha1.TaskTemplate) (json.RawMessage, bool, error) {
	ns := t.Spec.NamespaceName
	for _, name := range []string{ns, strings.TrimSuffix(ns, "_workflow")} {
		path := filepath.Join(dir, name+".json")
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if !json.Valid(data) {
			return nil, false, fmt.Errorf("%s is not valid JSON", path)
		}
		return data, true, nil
	}
	return nil, false, nil
}

// devExample is a workflow to run once, with its context.
type devExample struct {
	template *workflowsv1alpha1.TaskTemplate
	context  json.RawMessage
}

// runExamples submits one task per template that has a context, all at
// once, and follows them to their end, printing each change.
func (s *devSystem) runExamples(ctx context.Context, c *api.Client, templates []*workflowsv1alpha1.TaskTemplate, contexts string) ([]devResult, error) {
	var examples []devExample
	width := 0
	for _, t := range templates {
		data, ok, err := exampleContext(contexts, t)
		if err != nil {
			return nil, err
		}
		if !ok {
			fmt.Fprintf(s.out, "no context for %s in %s: no task for it\n", t.Spec.NamespaceName, contexts)
			continue
		}
		examples = append(examples, devExample{t, data})
		width = max(width, len(t.Spec.NamespaceName))
	}
	fmt.Fprintf(s.out, "\nsubmitting one task per workflow (contexts from %s)\n", contexts)
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		results = make([]devResult, len(examples))
	)
	emit := func(workflow, line string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(s.out, "%-*s  %s\n", width, workflow, line)
	}
	submitted := time.Now()
	for i, e := range examples {
		wg.Go(func() { results[i] = followExample(ctx, c, e, emit) })
	}
	wg.Wait()
	fmt.Fprintf(s.out, "all %d tasks ended after %s\n", len(examples), formatDuration(time.Since(submitted)))
	return results, nil
}

// followExample creates the example's task and polls it until it ends,
// emitting a progress line whenever it changed.
func followExample(ctx context.Context, c *api.Client, e devExample, emit func(workflow, line string)) devResult {
	ns := e.template.Spec.NamespaceName
	result := devResult{workflow: ns}
	task, err := c.CreateTask(ctx, api.CreateTaskRequest{
		Namespace: ns, Name: e.template.Spec.Name, Version: e.template.Spec.Version,
		Context: e.context, Initiator: "tasker dev", SourceSystem: "tasker-dev", Reason: "example",
	})
	if err != nil {
		result.err = fmt.Errorf("creating the task: %w", err)
		emit(ns, result.err.Error())
		return result
	}
	start := time.Now()
	var prev *api.Task
	w := &watcher{
		fetch: func(ctx context.Context) (*api.Task, error) {
			cur, err := c.GetTask(ctx, task.UUID)
			if err == nil && (prev == nil || snapshotChanged(prev, cur)) {
				emit(ns, progressLine(time.Since(start), prev, cur))
				prev = cur
			}
			return cur, err
		},
		interval: devPollInterval,
		clock:    realClock{},
		out:      io.Discard, // the fetch above prints
	}
	result.task, result.err = w.run(ctx)
	return result
}

// printDevResults prints a table of the example tasks: status, duration
// and the last step's result, or the error.
func printDevResults(out io.Writer, results []devResult) {
	fmt.Fprintln(out)
	fmt.Fprint(out, table(func(w io.Writer) {
		fmt.Fprintln(w, "WORKFLOW\tTASK\tSTATUS\tSTEPS\tDURATION\tRESULT")
		for _, r := range results {
			if r.task == nil {
				fmt.Fprintf(w, "%s\t-\tfailed\t-\t-\t%v\n", r.workflow, r.err)
				continue
			}
			outcome := ""
			if err := watchOutcome(r.task); err != nil {
				outcome = err.Error()
			} else if name, result := lastResult(r.task); name != "" {
				outcome = name + " = " + result
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", r.workflow, r.task.UUID, r.task.State,
				r.task.CompletedSteps, r.task.TotalSteps, taskDuration(r.task), outcome)
		}
	}))
}

// devOutcome is nil when every example task succeeded.
func devOutcome(results []devResult) error {
	var errs []error
	for _, r := range results {
		switch {
		case r.err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", r.workflow, r.err))
		case watchOutcome(r.task) != nil:
			errs = append(errs, fmt.Errorf("%s: %w", r.workflow, watchOutcome(r.task)))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d example task(s) did not succeed: %w", len(errs), len(results), errors.Join(errs...))
}
