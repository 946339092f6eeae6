// Package template defines workflow templates: the named, versioned graphs of steps
// that tasks are created from.
//
// It is the single path that both the TaskTemplate controller and the CLI take before
// a template is registered in the database: decode a [Definition], call
// [Definition.Validate], then store [Definition.WithDefaults] together with its
// [Definition.Fingerprint]. At task creation the template's input schema is compiled
// with [CompileSchema] and the task context is checked with [Schema.Validate].
//
// The package is pure Go: it has no database, network or file-system access.
package template

import (
	"encoding/json"
	"slices"
)

// IdentityStrategy decides how the identity of a task created from a template is
// computed, and therefore when two task requests are considered duplicates.
type IdentityStrategy string

const (
	// IdentityStrict derives the identity from the template and the task context, so
	// the same context submitted twice is a duplicate. It is the default.
	IdentityStrict IdentityStrategy = "strict"
	// IdentityCallerProvided uses the idempotency key supplied by the caller.
	IdentityCallerProvided IdentityStrategy = "caller_provided"
	// IdentityAlwaysUnique gives every task request a fresh identity; nothing is a
	// duplicate.
	IdentityAlwaysUnique IdentityStrategy = "always_unique"
)

// identityStrategies lists the valid strategies in the order used by messages.
var identityStrategies = []IdentityStrategy{IdentityStrict, IdentityCallerProvided, IdentityAlwaysUnique}

// IsValid reports whether s is one of the defined strategies. The empty string is not
// valid; it only becomes [IdentityStrict] through [Definition.WithDefaults].
func (s IdentityStrategy) IsValid() bool {
	return slices.Contains(identityStrategies, s)
}

// BackoffKind is the shape of the delay between attempts of a failed step.
type BackoffKind string

const (
	// BackoffExponential doubles the delay after every attempt: base * 2^(attempt-1).
	// It is the default.
	BackoffExponential BackoffKind = "exponential"
	// BackoffLinear grows the delay by the base after every attempt: base * attempt.
	BackoffLinear BackoffKind = "linear"
	// BackoffConstant waits the base delay after every attempt.
	BackoffConstant BackoffKind = "constant"
)

// backoffKinds lists the valid kinds in the order used by messages.
var backoffKinds = []BackoffKind{BackoffExponential, BackoffLinear, BackoffConstant}

// IsValid reports whether k is one of the defined kinds. The empty string is not
// valid; it only becomes [BackoffExponential] through [Definition.WithDefaults].
func (k BackoffKind) IsValid() bool {
	return slices.Contains(backoffKinds, k)
}

// Definition is a workflow template: a versioned, acyclic graph of steps. It mirrors
// the spec of the TaskTemplate custom resource, hence the camelCase JSON names.
//
// Optional integer fields use 0 to mean "use the default"; see [Definition.WithDefaults].
// A raw JSON field that is absent, empty or JSON null counts as not set.
type Definition struct {
	// NamespaceName is the workflow namespace. Steps of its tasks travel on the PGMQ
	// queue "<namespaceName>_queue". Required.
	NamespaceName string `json:"namespaceName"`
	// Name identifies the template within its namespace. Required.
	Name string `json:"name"`
	// Version is a semantic version MAJOR.MINOR.PATCH with an optional -prerelease
	// and +build, without a leading "v". Required.
	Version string `json:"version"`
	// Description is free text for people. Optional.
	Description string `json:"description,omitempty"`
	// IdentityStrategy decides when two task requests are duplicates. Optional,
	// default [IdentityStrict].
	IdentityStrategy IdentityStrategy `json:"identityStrategy,omitempty"`
	// InputSchema is a JSON Schema (draft 2020-12 unless it says otherwise with
	// "$schema") that every task context must satisfy. Optional; when absent any
	// context is accepted.
	InputSchema json.RawMessage `json:"inputSchema,omitempty"`
	// Steps are the units of work, in declaration order. At least one is required.
	Steps []Step `json:"steps"`
}

// Step is one node of the workflow graph.
type Step struct {
	// Name identifies the step within the template and is how other steps refer to
	// it in dependsOn. Required.
	Name string `json:"name"`
	// Description is free text for people. Optional.
	Description string `json:"description,omitempty"`
	// Handler says which code runs the step. Required.
	Handler Handler `json:"handler"`
	// DependsOn names the steps that must complete before this one starts. Optional;
	// a step without dependencies is a root.
	DependsOn []string `json:"dependsOn,omitempty"`
	// Retry says whether and how a failed attempt is retried. Optional; see
	// [RetryPolicy] for the defaults.
	Retry *RetryPolicy `json:"retry,omitempty"`
	// TimeoutSeconds bounds one attempt of the step. Optional, 0 means the default
	// of [DefaultTimeoutSeconds]; valid values are 1 to 86400.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
}

// Handler names the code that runs a step and the configuration it is built with.
type Handler struct {
	// Callable is the name a worker's handler registry resolves, such as
	// "linear_workflow.LinearStep1Handler"; segments are joined by ".", "::" or "/".
	// Required.
	Callable string `json:"callable"`
	// Initialization is configuration passed to the handler. Optional; when set it
	// must be a JSON object.
	Initialization json.RawMessage `json:"initialization,omitempty"`
}

// RetryPolicy says whether and how a failed step attempt is retried. Zero values mean
// "use the default", except JitterPercent, where nil means the default and 0 means no
// jitter. As a consequence a base delay of 0 ms cannot be expressed.
type RetryPolicy struct {
	// Retryable says whether a failed attempt may be retried at all. Optional,
	// default true.
	Retryable *bool `json:"retryable,omitempty"`
	// MaxAttempts is the total number of attempts, the first one included. Optional,
	// default [DefaultMaxAttempts]; valid values are 1 to 100.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Backoff is the shape of the delay between attempts. Optional, default
	// [BackoffExponential].
	Backoff BackoffKind `json:"backoff,omitempty"`
	// BackoffBaseMs is the base delay in milliseconds. Optional, default
	// [DefaultBackoffBaseMs]; valid values are 0 to 86400000.
	BackoffBaseMs int `json:"backoffBaseMs,omitempty"`
	// MaxBackoffMs caps every delay, jitter included. Optional, default
	// [DefaultMaxBackoffMs] or BackoffBaseMs when that is larger; it must be at least
	// BackoffBaseMs and at most 86400000.
	MaxBackoffMs int `json:"maxBackoffMs,omitempty"`
	// JitterPercent spreads each delay d uniformly over
	// [d*(1-p/100), d*(1+p/100)] before the cap is applied. Optional, default
	// [DefaultJitterPercent]; valid values are 0 to 100.
	JitterPercent *int `json:"jitterPercent,omitempty"`
}
