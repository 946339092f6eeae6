package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// classicTemplate is a template in the classic tasker YAML format. Its field
// names are the classic ones; see [ConvertClassic] for how they map.
type classicTemplate struct {
	Name          string          `json:"name"`
	NamespaceName string          `json:"namespace_name"`
	Version       classicVersion  `json:"version"`
	Description   string          `json:"description"`
	Schema        json.RawMessage `json:"schema"`
	InputSchema   json.RawMessage `json:"input_schema"`
	StepTemplates []classicStep   `json:"step_templates"`
	Steps         []classicStep   `json:"steps"`

	// The fields below configure the classic task handler class and its
	// dependent systems, which have no counterpart: they are read and dropped.
	TaskHandlerClass       json.RawMessage `json:"task_handler_class"`
	ModuleNamespace        json.RawMessage `json:"module_namespace"`
	DefaultDependentSystem json.RawMessage `json:"default_dependent_system"`
	NamedSteps             json.RawMessage `json:"named_steps"`
}

// classicStep is one entry of a classic template's steps or step_templates.
type classicStep struct {
	Name              string          `json:"name"`
	Description       string          `json:"description"`
	Handler           *classicHandler `json:"handler"`
	HandlerClass      string          `json:"handler_class"`
	HandlerConfig     json.RawMessage `json:"handler_config"`
	DependsOnStep     string          `json:"depends_on_step"`
	DependsOnSteps    []string        `json:"depends_on_steps"`
	Dependencies      []string        `json:"dependencies"`
	DefaultRetryable  *bool           `json:"default_retryable"`
	DefaultRetryLimit *int            `json:"default_retry_limit"`
	Retry             *classicRetry   `json:"retry"`
	TimeoutSeconds    int             `json:"timeout_seconds"`
	// DependentSystem names the classic step's external system: dropped.
	DependentSystem json.RawMessage `json:"dependent_system"`
}

// classicHandler is the handler block of a classic step.
type classicHandler struct {
	Callable       string          `json:"callable"`
	Initialization json.RawMessage `json:"initialization"`
}

// classicRetry is the retry block of a classic step.
type classicRetry struct {
	Retryable     *bool  `json:"retryable"`
	Limit         *int   `json:"limit"`
	MaxAttempts   *int   `json:"max_attempts"`
	Backoff       string `json:"backoff"`
	BackoffBaseMs *int   `json:"backoff_base_ms"`
	MaxBackoffMs  *int   `json:"max_backoff_ms"`
}

// classicVersion is a version that YAML may have read as a number
// (version: 1.0); it keeps the number's text.
type classicVersion string

// UnmarshalJSON accepts a JSON string or number.
func (v *classicVersion) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*v = classicVersion(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(data, &n); err != nil {
		return errors.New("version must be a string")
	}
	*v = classicVersion(n.String())
	return nil
}

// ConvertClassic converts one template in the classic tasker YAML (or JSON)
// format into a TaskTemplate manifest:
//
//   - name, namespace_name, version and description are copied; metadata.name
//     is name made a DNS-1123 name ("order_processing" → "order-processing");
//   - schema (or input_schema) becomes inputSchema;
//   - steps (or step_templates) become steps: handler.callable and
//     handler.initialization, or handler_class and handler_config, become the
//     handler; depends_on_step, depends_on_steps and dependencies together
//     become dependsOn; timeout_seconds becomes timeoutSeconds;
//   - retry.retryable (or default_retryable) becomes retry.retryable;
//     retry.limit, retry.max_attempts or default_retry_limit, all counting the
//     first attempt, become retry.maxAttempts (a limit of 0 becomes 1: one
//     attempt, no retry); retry.backoff ("fixed" is read as "constant"),
//     backoff_base_ms (0 becomes 1, since 0 means "default" in a
//     TaskTemplate) and max_backoff_ms keep their values.
//
// task_handler_class, module_namespace, default_dependent_system, named_steps
// and a step's dependent_system have no counterpart and are dropped. Any other
// field is an error that names it, so nothing else is lost silently; so are
// two fields that say different things (retry.limit and default_retry_limit
// with different values, handler and handler_class).
//
// The result is validated: when the definition is invalid, ConvertClassic
// returns the manifest together with the *[ValidationError], whose fields are
// relative to the spec.
func ConvertClassic(data []byte) (Manifest, error) {
	raw, err := classicDocument(data)
	if err != nil {
		return Manifest{}, err
	}
	var classic classicTemplate
	if err := decodeStrict(raw, &classic, ""); err != nil {
		return Manifest{}, fmt.Errorf("classic template: %w", err)
	}
	def, err := classic.definition()
	if err != nil {
		return Manifest{}, fmt.Errorf("classic template: %w", err)
	}
	m := Manifest{APIVersion: APIVersion, Kind: Kind, Metadata: ObjectMeta{Name: objectNameFor(def.Name)}, Spec: def}
	return m, def.Validate()
}

// classicDocument returns the single document of a classic template file as
// a JSON object.
func classicDocument(data []byte) (json.RawMessage, error) {
	docs := splitDocuments(data)
	switch {
	case len(docs) == 0:
		return nil, errors.New("classic template: the file is empty")
	case len(docs) > 1:
		return nil, fmt.Errorf("classic template: the file holds %d documents; convert one template at a time", len(docs))
	case docs[0].err != nil:
		return nil, fmt.Errorf("classic template: %w", docs[0].err)
	}
	var probe struct {
		APIVersion string `json:"apiVersion"`
	}
	if err := decodeEnvelope(docs[0].raw, &probe); err != nil {
		return nil, fmt.Errorf("classic template: %w", err)
	}
	if probe.APIVersion != "" {
		return nil, fmt.Errorf("classic template: the file is already a Kubernetes manifest (apiVersion %s)", probe.APIVersion)
	}
	return docs[0].raw, nil
}

// definition maps the classic template to a definition.
func (c classicTemplate) definition() (Definition, error) {
	def := Definition{NamespaceName: c.NamespaceName, Name: c.Name, Version: string(c.Version), Description: c.Description}
	var errs []error
	schema, err := either("schema", c.Schema, "input_schema", c.InputSchema, isUnsetRaw)
	errs = append(errs, err)
	def.InputSchema = cloneRaw(schema)
	steps, err := either("steps", c.Steps, "step_templates", c.StepTemplates, func(s []classicStep) bool { return len(s) == 0 })
	errs = append(errs, err)
	field := "steps"
	if len(c.Steps) == 0 && len(c.StepTemplates) > 0 {
		field = "step_templates"
	}
	for i, s := range steps {
		step, err := s.step(fmt.Sprintf("%s[%d]", field, i))
		errs = append(errs, err)
		def.Steps = append(def.Steps, step)
	}
	return def, errors.Join(errs...)
}

// either returns whichever of two alternative fields is set, and an error
// when both are.
func either[T any](nameA string, a T, nameB string, b T, unset func(T) bool) (T, error) {
	if unset(a) {
		return b, nil
	}
	if !unset(b) {
		return a, fmt.Errorf("%s and %s are alternatives: set only one", nameA, nameB)
	}
	return a, nil
}

// objectNameFor turns a template name into a DNS-1123 subdomain for
// metadata.name: lowercase, every character other than a letter, digit, '-'
// or '.' replaced by '-', no leading or trailing '-' or '.'.
func objectNameFor(name string) string {
	mapped := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		default:
			return '-'
		}
	}, name)
	if len(mapped) > maxObjectNameLen {
		mapped = mapped[:maxObjectNameLen]
	}
	return strings.Trim(mapped, "-.")
}
