package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/api"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

var (
	sampleTaskUUID = uuid.MustParse("0190a4b2-7c3d-7e8f-9a0b-1c2d3e4f5a6b")
	sampleCreated  = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
)

// at is the sample creation time plus ms milliseconds.
func at(ms int) *time.Time {
	t := sampleCreated.Add(time.Duration(ms) * time.Millisecond)
	return &t
}

// sampleTask is a diamond task with a step in each interesting state.
func sampleTask() *api.Task {
	task := newAPITask(orchestration.Task{
		UUID: sampleTaskUUID, Namespace: "diamond_workflow", Name: "diamond_pattern", Version: "1.0.0",
		State: orchestration.TaskBlockedByFailures, CreatedAt: sampleCreated,
		Steps: []orchestration.Step{
			{Name: "diamond_start", State: orchestration.StepComplete, Attempts: 1, MaxAttempts: 3, StartedAt: at(10), CompletedAt: at(22), Results: json.RawMessage(`{"value": 36}`)},
			{Name: "diamond_branch_b", State: orchestration.StepError, Attempts: 3, MaxAttempts: 3, StartedAt: at(100), CompletedAt: at(1600), Error: &dispatch.StepError{Code: "TIMEOUT", Message: "took longer than 1s", Retryable: true}},
			{Name: "diamond_branch_c", State: orchestration.StepInProgress, Attempts: 1, MaxAttempts: 3, StartedAt: at(30)},
			{Name: "diamond_end", State: orchestration.StepPending, MaxAttempts: 3},
		},
	})
	task.ExecutionStatus = "blocked_by_failures"
	task.CompletionPercentage = 25
	task.CompletedSteps, task.TotalSteps = 1, 4
	task.UpdatedAt = *at(2345)
	return task
}

// newAPITask wraps an engine task in the API's view of it.
func newAPITask(task orchestration.Task) *api.Task { return &api.Task{Task: task} }

func TestRenderTask(t *testing.T) {
	t.Parallel()
	want := `Task:              0190a4b2-7c3d-7e8f-9a0b-1c2d3e4f5a6b
Template:          diamond_workflow/diamond_pattern@1.0.0
Status:            blocked_by_failures
Execution status:  blocked_by_failures
Completion:        25% (1/4 steps)
Created:           2025-03-14T09:26:53Z
Duration:          2.345s

NAME              STATE        ATTEMPTS  DURATION  ERROR
diamond_start     complete     1/3       12ms
diamond_branch_b  error        3/3       1.5s      TIMEOUT: took longer than 1s
diamond_branch_c  in_progress  1/3       -
diamond_end       pending      0/3       -
`
	require.Equal(t, want, renderTask(sampleTask()))
}

func TestRenderTaskCreated(t *testing.T) {
	t.Parallel()
	want := `UUID                                  TEMPLATE                                STATUS
0190a4b2-7c3d-7e8f-9a0b-1c2d3e4f5a6b  diamond_workflow/diamond_pattern@1.0.0  blocked_by_failures
`
	require.Equal(t, want, renderTaskCreated(sampleTask()))
}

func TestRenderTaskList(t *testing.T) {
	t.Parallel()
	done := sampleTask()
	duration := int64(2345)
	done.State, done.CompletedSteps, done.DurationMs, done.Steps = orchestration.TaskComplete, 4, &duration, nil
	running := sampleTask()
	running.UUID, running.State, running.Steps = uuid.MustParse("0190a4b2-0000-7000-8000-000000000001"), orchestration.TaskStepsInProcess, nil
	list := &api.TaskList{Tasks: []api.Task{*running, *done}, Total: 51, Page: 2, PerPage: 25}
	want := `UUID                                  TEMPLATE                                STATUS            STEPS  CREATED               DURATION
0190a4b2-0000-7000-8000-000000000001  diamond_workflow/diamond_pattern@1.0.0  steps_in_process  1/4    2025-03-14T09:26:53Z  -
0190a4b2-7c3d-7e8f-9a0b-1c2d3e4f5a6b  diamond_workflow/diamond_pattern@1.0.0  complete          4/4    2025-03-14T09:26:53Z  2.345s
page 2 of 3 (51 tasks)
`
	require.Equal(t, want, renderTaskList(list))

	t.Run("empty", func(t *testing.T) {
		t.Parallel()
		out := renderTaskList(&api.TaskList{Page: 1, PerPage: 25})
		require.Contains(t, out, "page 1 of 1 (0 tasks)")
	})
}

func TestPrintStructured(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, printTask(&out, sampleTask(), outputJSON, renderTask))
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &decoded))
	require.Equal(t, sampleTaskUUID.String(), decoded["task_uuid"])
	require.Equal(t, "blocked_by_failures", decoded["status"])

	out.Reset()
	require.NoError(t, printTask(&out, sampleTask(), outputYAML, renderTask))
	require.Contains(t, out.String(), "task_uuid: "+sampleTaskUUID.String()+"\n")
	require.Contains(t, out.String(), "  name: diamond_start\n")
}

func TestAPIErrorMessage(t *testing.T) {
	t.Parallel()
	apiErr := &api.Error{
		Status: 400, Code: "INVALID_CONTEXT", Message: "context does not match the input schema",
		Details: []json.RawMessage{
			json.RawMessage(`{"path": "$.even_number", "message": "must be multiple of 2"}`),
			json.RawMessage(`{"field": "priority", "message": "too high"}`),
			json.RawMessage(`"plain words"`),
			json.RawMessage(`{"existing_task_uuid": "0190a4b2-0000-7000-8000-000000000001"}`),
			json.RawMessage(`{"other": [1, 2]}`),
			json.RawMessage(`"the input schema"`), // the message says it already
		},
	}
	err := explainError(fmt.Errorf("calling: %w", apiErr), "http://x", time.Second)
	require.EqualError(t, err, `400 INVALID_CONTEXT: context does not match the input schema
  $.even_number: must be multiple of 2
  priority: too high
  plain words
  existing task 0190a4b2-0000-7000-8000-000000000001
  {"other":[1,2]}`)
	var unwrapped *api.Error
	require.ErrorAs(t, err, &unwrapped)

	require.NoError(t, explainError(nil, "http://x", time.Second))
	other := errors.New("something else")
	require.Equal(t, other, explainError(other, "http://x", time.Second))
}

func TestPageCount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ total, perPage, want int }{
		{0, 25, 1}, {25, 25, 1}, {26, 25, 2}, {51, 25, 3}, {10, 0, 1},
	} {
		require.Equal(t, tc.want, pageCount(tc.total, tc.perPage), "%d tasks, %d per page", tc.total, tc.perPage)
	}
}
