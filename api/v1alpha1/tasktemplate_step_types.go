package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// TaskTemplateStep is one node of the workflow graph. It mirrors template.Step.
//
// +kubebuilder:validation:XValidation:rule="!has(self.dependsOn) || !(self.name in self.dependsOn)",message="a step must not depend on itself",messageExpression="'step ' + self.name + ' must not depend on itself'",fieldPath=".dependsOn",reason=FieldValueInvalid
type TaskTemplateStep struct {
	// name identifies the step within the template and is how other steps refer to
	// it in dependsOn: lowercase letters, digits and underscores, not starting with
	// a digit.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]*$`
	Name string `json:"name"`

	// description is free text for people.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Description string `json:"description,omitempty"`

	// handler says which code runs the step.
	// +required
	Handler StepHandler `json:"handler"`

	// dependsOn names the steps of this template that must complete before this one
	// starts. A step without dependencies is a root of the graph.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=500
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z_][a-z0-9_]*$`
	DependsOn []string `json:"dependsOn,omitempty"`

	// retry says whether and how a failed attempt is retried. When absent, a failed
	// attempt is retried with the defaults of each field.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`

	// timeoutSeconds bounds one attempt of the step. When absent the engine's
	// default of 60 seconds applies.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
}

// StepHandler names the code that runs a step and the configuration it is built
// with. It mirrors template.Handler.
type StepHandler struct {
	// callable is the name that a worker's handler registry resolves, such as
	// "linear_workflow.LinearStep1Handler": identifiers (letters, digits and '_',
	// not starting with a digit) joined by ".", "::" or "/".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*(([.]|::|/)[A-Za-z_][A-Za-z0-9_]*)*$`
	Callable string `json:"callable"`

	// initialization is configuration passed to the handler, a JSON object of any
	// shape.
	// +optional
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Initialization *apiextensionsv1.JSON `json:"initialization,omitempty"`
}

// RetryPolicy says whether and how a failed step attempt is retried. It mirrors
// template.RetryPolicy: an absent field takes the engine's default, and so does an
// integer field set to 0, except jitterPercent, where 0 means no jitter.
//
// +kubebuilder:validation:XValidation:rule="!has(self.maxBackoffMs) || !has(self.backoffBaseMs) || self.maxBackoffMs >= self.backoffBaseMs",message="maxBackoffMs must be at least backoffBaseMs",fieldPath=".maxBackoffMs",reason=FieldValueInvalid
type RetryPolicy struct {
	// retryable says whether a failed attempt may be retried at all. Default true.
	// Permanent errors are never retried.
	// +optional
	Retryable *bool `json:"retryable,omitempty"`

	// maxAttempts is the total number of attempts, the first one included.
	// Default 3.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxAttempts int32 `json:"maxAttempts,omitempty"`

	// backoff is the shape of the delay between attempts: exponential
	// (base * 2^(attempt-1)), linear (base * attempt) or constant (base).
	// Default exponential.
	// +optional
	Backoff BackoffKind `json:"backoff,omitempty"`

	// backoffBaseMs is the base delay between attempts in milliseconds, at most one
	// day. Default 1000; 0 also means the default.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400000
	BackoffBaseMs int32 `json:"backoffBaseMs,omitempty"`

	// maxBackoffMs caps every delay, jitter included, in milliseconds. It must be at
	// least backoffBaseMs. Default 30000, or backoffBaseMs when that is larger.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400000
	MaxBackoffMs int32 `json:"maxBackoffMs,omitempty"`

	// jitterPercent spreads each delay d uniformly over [d*(1-p/100), d*(1+p/100)]
	// before the cap applies. Default 10; 0 turns jitter off.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	JitterPercent *int32 `json:"jitterPercent,omitempty"`
}

// BackoffKind is the shape of the delay between attempts of a failed step. The
// values are those of template.BackoffKind.
// +kubebuilder:validation:Enum=exponential;linear;constant
type BackoffKind string

const (
	// BackoffExponential doubles the delay after every attempt.
	BackoffExponential BackoffKind = "exponential"
	// BackoffLinear grows the delay by the base after every attempt.
	BackoffLinear BackoffKind = "linear"
	// BackoffConstant waits the base delay after every attempt.
	BackoffConstant BackoffKind = "constant"
)
