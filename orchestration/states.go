package orchestration

// TaskState is the state of a task (kept from the original tasker design).
type TaskState string

// Task states. Terminal: complete, error, cancelled, resolved_manually.
const (
	TaskPending                TaskState = "pending"
	TaskInitializing           TaskState = "initializing"
	TaskEnqueuingSteps         TaskState = "enqueuing_steps"
	TaskStepsInProcess         TaskState = "steps_in_process"
	TaskEvaluatingResults      TaskState = "evaluating_results"
	TaskWaitingForDependencies TaskState = "waiting_for_dependencies"
	TaskWaitingForRetry        TaskState = "waiting_for_retry"
	TaskBlockedByFailures      TaskState = "blocked_by_failures"
	TaskComplete               TaskState = "complete"
	TaskError                  TaskState = "error"
	TaskCancelled              TaskState = "cancelled"
	TaskResolvedManually       TaskState = "resolved_manually"
)

// Terminal reports whether no further change can happen to the task.
func (s TaskState) Terminal() bool {
	switch s {
	case TaskComplete, TaskError, TaskCancelled, TaskResolvedManually:
		return true
	}
	return false
}

// StepState is the state of a workflow step.
type StepState string

// Step states. Terminal: complete, error, cancelled, resolved_manually
// (error is terminal for the orchestrator; a person may still retry or
// resolve it).
const (
	StepPending                         StepState = "pending"
	StepEnqueued                        StepState = "enqueued"
	StepInProgress                      StepState = "in_progress"
	StepEnqueuedForOrchestration        StepState = "enqueued_for_orchestration"
	StepEnqueuedAsErrorForOrchestration StepState = "enqueued_as_error_for_orchestration"
	StepWaitingForRetry                 StepState = "waiting_for_retry"
	StepComplete                        StepState = "complete"
	StepError                           StepState = "error"
	StepCancelled                       StepState = "cancelled"
	StepResolvedManually                StepState = "resolved_manually"
)

// Satisfied reports whether the step counts as done for its dependents.
func (s StepState) Satisfied() bool { return s == StepComplete || s == StepResolvedManually }

// Terminal reports whether the step will not change without a person.
func (s StepState) Terminal() bool {
	return s.Satisfied() || s == StepError || s == StepCancelled
}

// InFlight reports whether the step is queued, running, or has an outcome
// waiting for the orchestrator.
func (s StepState) InFlight() bool {
	switch s {
	case StepEnqueued, StepInProgress, StepEnqueuedForOrchestration, StepEnqueuedAsErrorForOrchestration:
		return true
	}
	return false
}

// nextTaskState decides a running task's state from how many of its steps
// are in each state. It is the single place that finalizes a task.
func nextTaskState(steps map[StepState]int) TaskState {
	total, satisfied, inFlight := 0, 0, 0
	for state, n := range steps {
		total += n
		if state.Satisfied() {
			satisfied += n
		}
		if state.InFlight() {
			inFlight += n
		}
	}
	switch {
	case total > 0 && satisfied == total:
		return TaskComplete
	case inFlight > 0:
		return TaskStepsInProcess
	case steps[StepWaitingForRetry] > 0:
		return TaskWaitingForRetry
	case steps[StepError] > 0:
		return TaskBlockedByFailures
	default:
		// Pending steps whose parents are not done, with nothing running:
		// only reachable if a parent was cancelled individually.
		return TaskWaitingForDependencies
	}
}
