package template

import (
	"encoding/json"
	"fmt"
	"strings"
)

// checkSteps validates the step list, each step, and the dependency graph.
func (ps *problems) checkSteps(steps []Step) {
	switch {
	case len(steps) == 0:
		ps.addf("steps", "at least one step is required")
	case len(steps) > maxSteps:
		ps.addf("steps", "must have at most %d steps, got %d", maxSteps, len(steps))
	}
	g := newGraph(steps)
	for i, step := range steps {
		prefix := fmt.Sprintf("steps[%d]", i)
		ps.checkStepName(prefix, step.Name, i, g.first)
		ps.checkHandler(prefix+".handler", step.Handler)
		ps.checkDependsOn(prefix+".dependsOn", step, g.first)
		if step.Retry != nil {
			ps.checkRetry(prefix+".retry", *step.Retry)
		}
		if step.TimeoutSeconds < 1 || step.TimeoutSeconds > maxTimeoutSecs {
			ps.addf(prefix+".timeoutSeconds", "must be between 1 and %d, got %d", maxTimeoutSecs, step.TimeoutSeconds)
		}
	}
	for _, cycle := range g.cycles() {
		ps.addf("steps", "dependency cycle: %s", strings.Join(g.namesOf(cycle), " → "))
	}
}

// checkStepName validates the name of step i; first maps each name to the index of
// the first step that declares it.
func (ps *problems) checkStepName(prefix, name string, i int, first map[string]int) {
	field := prefix + ".name"
	switch {
	case name == "":
		ps.addf(field, "is required")
	case len(name) > maxStepNameLen:
		ps.addf(field, "must be at most %d bytes, got %d", maxStepNameLen, len(name))
	case !stepNamePattern.MatchString(name):
		ps.addf(field, "%q must contain only lowercase letters, digits and underscores, "+
			"and must not start with a digit", name)
	}
	if j, ok := first[name]; ok && j != i {
		ps.addf(field, "duplicate step name %q (also steps[%d])", name, j)
	}
}

// checkHandler validates the callable and the initialization of a handler.
func (ps *problems) checkHandler(prefix string, h Handler) {
	field := prefix + ".callable"
	switch {
	case h.Callable == "":
		ps.addf(field, "is required")
	case len(h.Callable) > maxCallableLen:
		ps.addf(field, "must be at most %d bytes, got %d", maxCallableLen, len(h.Callable))
	case !callablePattern.MatchString(h.Callable):
		ps.addf(field, "%q must be identifiers (letters, digits and '_', not starting with a digit) "+
			"joined by '.', '::' or '/'", h.Callable)
	}
	if !isUnsetRaw(h.Initialization) {
		if _, err := decodeObject(h.Initialization); err != nil {
			ps.addf(prefix+".initialization", "%v", err)
		}
	}
}

// checkDependsOn validates the dependency names of step; first maps each declared
// step name to its index.
func (ps *problems) checkDependsOn(prefix string, step Step, first map[string]int) {
	seen := make(map[string]int, len(step.DependsOn))
	for k, dep := range step.DependsOn {
		field := fmt.Sprintf("%s[%d]", prefix, k)
		if prev, dup := seen[dep]; dup {
			ps.addf(field, "duplicate dependency %q (also dependsOn[%d])", dep, prev)
			continue
		}
		seen[dep] = k
		if _, known := first[dep]; !known {
			ps.addf(field, "unknown step %q", dep)
		} else if dep == step.Name {
			ps.addf(field, "step %q cannot depend on itself", dep)
		}
	}
}

// checkRetry validates a retry policy that has had its defaults applied.
func (ps *problems) checkRetry(prefix string, p RetryPolicy) {
	if p.MaxAttempts < 1 || p.MaxAttempts > maxAttemptsCap {
		ps.addf(prefix+".maxAttempts", "must be between 1 and %d, got %d", maxAttemptsCap, p.MaxAttempts)
	}
	if !p.Backoff.IsValid() {
		ps.addf(prefix+".backoff", "must be one of %s, got %q", quoteAll(backoffKinds), p.Backoff)
	}
	ps.checkRetryDelays(prefix, p)
}

// checkRetryDelays validates the delay settings of a retry policy that has had its
// defaults applied.
func (ps *problems) checkRetryDelays(prefix string, p RetryPolicy) {
	if p.BackoffBaseMs < 0 || p.BackoffBaseMs > maxBackoffCapMs {
		ps.addf(prefix+".backoffBaseMs", "must be between 0 and %d, got %d", maxBackoffCapMs, p.BackoffBaseMs)
	}
	switch {
	case p.MaxBackoffMs < p.BackoffBaseMs:
		ps.addf(prefix+".maxBackoffMs", "must be at least backoffBaseMs (%d), got %d", p.BackoffBaseMs, p.MaxBackoffMs)
	case p.MaxBackoffMs > maxBackoffCapMs:
		ps.addf(prefix+".maxBackoffMs", "must be at most %d, got %d", maxBackoffCapMs, p.MaxBackoffMs)
	}
	if p.JitterPercent != nil && (*p.JitterPercent < 0 || *p.JitterPercent > 100) {
		ps.addf(prefix+".jitterPercent", "must be between 0 and 100, got %d", *p.JitterPercent)
	}
}

// decodeObject decodes raw, which must hold exactly one JSON object. Numbers are
// kept exact as json.Number.
func decodeObject(raw json.RawMessage) (map[string]any, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("is not valid JSON: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a JSON object, got %s", jsonKind(v))
	}
	return obj, nil
}

// jsonKind names the JSON type of a decoded value for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	default:
		return "object"
	}
}
