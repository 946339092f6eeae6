package v1alpha1

import (
	"bytes"
	"encoding/json"
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/taskerops/tasker/orchestration/template"
)

// Definition converts the spec to the engine's type, field by field. Nothing is
// defaulted or validated: spec.name stays empty when it is empty (see
// [TaskTemplate.Definition]), and the caller runs template.Definition.Validate.
// The result shares no memory with s.
func (s *TaskTemplateSpec) Definition() template.Definition {
	def := template.Definition{
		NamespaceName:    s.NamespaceName,
		Name:             s.Name,
		Version:          s.Version,
		Description:      s.Description,
		IdentityStrategy: template.IdentityStrategy(s.IdentityStrategy),
		InputSchema:      rawJSON(s.InputSchema),
	}
	if s.Steps != nil {
		def.Steps = make([]template.Step, len(s.Steps))
	}
	for i := range s.Steps {
		def.Steps[i] = s.Steps[i].definition()
	}
	return def
}

// Definition returns the spec as the engine's type with its name defaulted to
// metadata.name, as the TaskTemplate controller registers it.
func (t *TaskTemplate) Definition() template.Definition {
	def := t.Spec.Definition()
	if def.Name == "" {
		def.Name = t.Name
	}
	return def
}

// definition converts one step.
func (s *TaskTemplateStep) definition() template.Step {
	step := template.Step{
		Name:        s.Name,
		Description: s.Description,
		Handler: template.Handler{
			Callable:       s.Handler.Callable,
			Initialization: rawJSON(s.Handler.Initialization),
		},
		DependsOn:      slices.Clone(s.DependsOn),
		TimeoutSeconds: int(s.TimeoutSeconds),
	}
	if s.Retry != nil {
		retry := s.Retry.definition()
		step.Retry = &retry
	}
	return step
}

// definition converts a retry policy.
func (p *RetryPolicy) definition() template.RetryPolicy {
	retry := template.RetryPolicy{
		MaxAttempts:   int(p.MaxAttempts),
		Backoff:       template.BackoffKind(p.Backoff),
		BackoffBaseMs: int(p.BackoffBaseMs),
		MaxBackoffMs:  int(p.MaxBackoffMs),
	}
	if p.Retryable != nil {
		retryable := *p.Retryable
		retry.Retryable = &retryable
	}
	if p.JitterPercent != nil {
		jitter := int(*p.JitterPercent)
		retry.JitterPercent = &jitter
	}
	return retry
}

// rawJSON copies the bytes of an optional JSON value; absent becomes nil.
func rawJSON(v *apiextensionsv1.JSON) json.RawMessage {
	if v == nil || v.Raw == nil {
		return nil
	}
	return bytes.Clone(v.Raw)
}
