package template

import (
	"errors"
	"fmt"
	"slices"
)

// classicBackoffs maps classic backoff names that differ from ours.
var classicBackoffs = map[string]BackoffKind{"fixed": BackoffConstant}

// step maps one classic step, found at path, to a step.
func (s classicStep) step(path string) (Step, error) {
	step := Step{
		Name:           s.Name,
		Description:    s.Description,
		DependsOn:      s.dependsOn(),
		TimeoutSeconds: s.TimeoutSeconds,
	}
	handler, handlerErr := s.handler(path)
	step.Handler = handler
	retry, hasRetry, retryErr := s.retry(path)
	if hasRetry {
		step.Retry = &retry
	}
	return step, errors.Join(handlerErr, retryErr)
}

// handler maps handler.callable and handler.initialization, or handler_class
// and handler_config.
func (s classicStep) handler(path string) (Handler, error) {
	switch {
	case s.Handler != nil && s.HandlerClass != "":
		return Handler{}, fmt.Errorf("%s: handler and handler_class are alternatives: set only one", path)
	case s.Handler != nil && !isUnsetRaw(s.HandlerConfig):
		return Handler{}, fmt.Errorf("%s: handler_config goes with handler_class; with handler, use handler.initialization", path)
	case s.Handler != nil:
		return Handler{Callable: s.Handler.Callable, Initialization: cloneRaw(s.Handler.Initialization)}, nil
	default:
		return Handler{Callable: s.HandlerClass, Initialization: cloneRaw(s.HandlerConfig)}, nil
	}
}

// dependsOn merges depends_on_step, depends_on_steps and dependencies, in
// that order, without duplicates.
func (s classicStep) dependsOn() []string {
	var deps []string
	if s.DependsOnStep != "" {
		deps = append(deps, s.DependsOnStep)
	}
	for _, dep := range slices.Concat(s.DependsOnSteps, s.Dependencies) {
		if !slices.Contains(deps, dep) {
			deps = append(deps, dep)
		}
	}
	return deps
}

// retry maps the retry block and the default_retry* fields to a retry policy;
// ok is false when the step sets none of them.
func (s classicStep) retry(path string) (policy RetryPolicy, ok bool, err error) {
	var r classicRetry
	if s.Retry != nil {
		r = *s.Retry
	}
	retryable, hasRetryable, errRetryable := agree(path,
		setting[bool]{"retry.retryable", r.Retryable}, setting[bool]{"default_retryable", s.DefaultRetryable})
	limit, hasLimit, errLimit := agree(path, setting[int]{"retry.limit", r.Limit},
		setting[int]{"retry.max_attempts", r.MaxAttempts}, setting[int]{"default_retry_limit", s.DefaultRetryLimit})
	if err := errors.Join(errRetryable, errLimit); err != nil || s.Retry == nil && !hasRetryable && !hasLimit {
		return RetryPolicy{}, false, err
	}
	policy.Backoff = BackoffKind(r.Backoff)
	if kind, renamed := classicBackoffs[r.Backoff]; renamed {
		policy.Backoff = kind
	}
	if hasRetryable {
		policy.Retryable = &retryable
	}
	if hasLimit {
		policy.MaxAttempts = limit
		if limit == 0 {
			policy.MaxAttempts = 1 // a limit of 0 allows the first attempt only
		}
	}
	if r.BackoffBaseMs != nil {
		policy.BackoffBaseMs = *r.BackoffBaseMs
		if policy.BackoffBaseMs == 0 {
			policy.BackoffBaseMs = 1 // 0 means "default" in a TaskTemplate
		}
	}
	if r.MaxBackoffMs != nil {
		policy.MaxBackoffMs = *r.MaxBackoffMs
	}
	return policy, true, nil
}

// setting is one classic field that sets a value, nil when absent.
type setting[T comparable] struct {
	field string
	value *T
}

// agree returns the value of the settings that are present (ok is false when
// none is) and an error naming two that are present with different values.
func agree[T comparable](path string, settings ...setting[T]) (value T, ok bool, err error) {
	var chosen *setting[T]
	for i := range settings {
		s := &settings[i]
		switch {
		case s.value == nil:
			continue
		case chosen == nil:
			chosen = s
		case *chosen.value != *s.value:
			return value, false, fmt.Errorf("%s: %s (%v) and %s (%v) disagree", path, chosen.field, *chosen.value, s.field, *s.value)
		}
	}
	if chosen == nil {
		return value, false, nil
	}
	return *chosen.value, true, nil
}
