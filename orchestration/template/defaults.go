package template

import (
	"bytes"
	"encoding/json"
	"slices"
)

// Defaults applied by [Definition.WithDefaults]. This file is the only place where
// optional values are filled in.
const (
	// DefaultIdentityStrategy is used when a definition names no identity strategy.
	DefaultIdentityStrategy = IdentityStrict
	// DefaultTimeoutSeconds bounds a step attempt when the step sets no timeout.
	DefaultTimeoutSeconds = 60
	// DefaultMaxAttempts is the total number of attempts, the first included.
	DefaultMaxAttempts = 3
	// DefaultBackoff is the shape of the delay between attempts.
	DefaultBackoff = BackoffExponential
	// DefaultBackoffBaseMs is the base delay between attempts, in milliseconds.
	DefaultBackoffBaseMs = 1000
	// DefaultMaxBackoffMs caps the delay between attempts, in milliseconds. When the
	// base delay is larger, the cap defaults to the base delay instead.
	DefaultMaxBackoffMs = 30000
	// DefaultJitterPercent spreads each delay by up to this percentage either way.
	DefaultJitterPercent = 10
)

// WithDefaults returns a deep copy of d with every optional value filled in: the
// identity strategy, each step's timeout, and each step's retry policy with all of
// its fields. Raw JSON that is empty or JSON null becomes nil. The receiver is not
// modified and the result shares no memory with it.
//
// WithDefaults does not correct invalid values; a negative timeout stays negative so
// that [Definition.Validate] can report it.
func (d Definition) WithDefaults() Definition {
	out := d
	if out.IdentityStrategy == "" {
		out.IdentityStrategy = DefaultIdentityStrategy
	}
	out.InputSchema = cloneRaw(d.InputSchema)
	if d.Steps != nil {
		out.Steps = make([]Step, len(d.Steps))
	}
	for i, step := range d.Steps {
		out.Steps[i] = step.withDefaults()
	}
	return out
}

// withDefaults returns a deep copy of s with its timeout and retry policy filled in.
func (s Step) withDefaults() Step {
	out := s
	out.DependsOn = slices.Clone(s.DependsOn)
	out.Handler.Initialization = cloneRaw(s.Handler.Initialization)
	if out.TimeoutSeconds == 0 {
		out.TimeoutSeconds = DefaultTimeoutSeconds
	}
	var retry RetryPolicy
	if s.Retry != nil {
		retry = *s.Retry
	}
	retry = retry.withDefaults()
	out.Retry = &retry
	return out
}

// withDefaults returns a deep copy of p with every field set.
func (p RetryPolicy) withDefaults() RetryPolicy {
	retryable := true
	if p.Retryable != nil {
		retryable = *p.Retryable
	}
	p.Retryable = &retryable

	jitter := DefaultJitterPercent
	if p.JitterPercent != nil {
		jitter = *p.JitterPercent
	}
	p.JitterPercent = &jitter

	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.Backoff == "" {
		p.Backoff = DefaultBackoff
	}
	if p.BackoffBaseMs == 0 {
		p.BackoffBaseMs = DefaultBackoffBaseMs
	}
	if p.MaxBackoffMs == 0 {
		p.MaxBackoffMs = max(DefaultMaxBackoffMs, p.BackoffBaseMs)
	}
	return p
}

// isUnsetRaw reports whether raw carries no value: absent, blank or JSON null.
func isUnsetRaw(raw json.RawMessage) bool {
	trimmed := bytes.TrimSpace(raw)
	return len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null"))
}

// cloneRaw copies raw, turning an unset value into nil.
func cloneRaw(raw json.RawMessage) json.RawMessage {
	if isUnsetRaw(raw) {
		return nil
	}
	return bytes.Clone(raw)
}
