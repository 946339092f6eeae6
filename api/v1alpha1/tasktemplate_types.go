package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TaskTemplateSpec is a workflow template: a versioned, acyclic graph of steps. It
// mirrors template.Definition field by field, with the same JSON names, so that a
// spec converts to the engine's type without loss (see [TaskTemplateSpec.Definition]).
//
// The rule below checks that every dependency names a step of this template. Written
// as the obvious nested loop (every dependsOn entry of every step against every step
// name), the API server estimates its cost for 500 steps of 500 dependencies at
// over 400 times its limit and refuses the CRD. So the rule builds a map of the step
// names once, binds it to "names" by iterating over a one-element list, and looks
// each dependency up in it: about 15% of the limit. transformMapEntry needs
// Kubernetes 1.33 or later, and fails on a duplicate step name, which the API server
// reports anyway because steps is keyed by name. The message expression names the
// first step with an unknown dependency (naming the dependency too would make the
// estimate unbounded).
//
// +kubebuilder:validation:XValidation:rule="[self.steps.transformMapEntry(i, s, {s.name: true})].all(names, self.steps.all(s, !has(s.dependsOn) || s.dependsOn.all(d, d in names)))",message="steps[].dependsOn must name steps of this template",messageExpression="'steps[].dependsOn must name steps of this template: step ' + [self.steps.transformMapEntry(i, s, {s.name: true})].map(names, self.steps.filter(s, has(s.dependsOn) && s.dependsOn.exists(d, !(d in names)))[0].name)[0] + ' depends on a step that does not exist'",fieldPath=".steps",reason=FieldValueInvalid
type TaskTemplateSpec struct {
	// namespaceName is the workflow namespace. Steps of the template's tasks travel on
	// the PGMQ queue "<namespaceName>_queue", which is why the name is limited to
	// lowercase letters, digits and underscores and to 40 characters (the queue's
	// tables and indexes must fit PostgreSQL's 63-byte identifiers).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]*$`
	NamespaceName string `json:"namespaceName"`

	// name identifies the template within its namespace; tasks are created by
	// namespace, name and version. When empty, the controller uses metadata.name.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-z0-9_][a-z0-9_.-]*$`
	Name string `json:"name,omitempty"`

	// version is a semantic version, MAJOR.MINOR.PATCH with optional pre-release
	// ("-rc.1") and build ("+build.5") parts, without a leading "v" and without
	// leading zeros, such as 1.0.0 or 2.1.0-rc.1. Several versions of a template can
	// be registered side by side.
	// +required
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$`
	Version string `json:"version"`

	// description is free text for people.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Description string `json:"description,omitempty"`

	// identityStrategy decides when two task requests for this template are
	// duplicates: strict (the same context is a duplicate), caller_provided (the
	// caller's idempotency key decides) or always_unique (never).
	// +optional
	// +kubebuilder:default=strict
	IdentityStrategy IdentityStrategy `json:"identityStrategy,omitempty"`

	// inputSchema is a JSON Schema (draft 2020-12 unless it says otherwise with
	// "$schema") that the context of every task must satisfy. When absent, any
	// context is accepted. The controller reports a schema that does not compile.
	// +optional
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	InputSchema *apiextensionsv1.JSON `json:"inputSchema,omitempty"`

	// steps are the units of work, in declaration order. Step names are unique: the
	// list is keyed by name.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=500
	Steps []TaskTemplateStep `json:"steps"`
}

// IdentityStrategy decides how the identity of a task is computed, and therefore
// when two task requests are duplicates. The values are those of
// template.IdentityStrategy.
// +kubebuilder:validation:Enum=strict;caller_provided;always_unique
type IdentityStrategy string

const (
	// IdentityStrict derives the identity from the template and the task context.
	IdentityStrict IdentityStrategy = "strict"
	// IdentityCallerProvided uses the idempotency key supplied by the caller.
	IdentityCallerProvided IdentityStrategy = "caller_provided"
	// IdentityAlwaysUnique gives every task request a fresh identity.
	IdentityAlwaysUnique IdentityStrategy = "always_unique"
)

// TaskTemplateStatus is what the controller last observed of a TaskTemplate.
type TaskTemplateStatus struct {
	// conditions describe the template's state. Ready is True with reason Synced
	// when the spec is registered in the database, and False with InvalidSpec,
	// Conflict or DatabaseUnavailable otherwise.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the metadata.generation the status describes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// stepCount is the number of steps of the registered definition.
	// +optional
	// +kubebuilder:validation:Minimum=0
	StepCount int32 `json:"stepCount,omitempty"`

	// syncedAt is when the spec was last registered in the database.
	// +optional
	SyncedAt *metav1.Time `json:"syncedAt,omitempty"`

	// registered is the key the spec was last registered under. When
	// spec.namespaceName, spec.name or spec.version changes, the controller
	// registers the new key and retires this one; deleting the resource retires
	// it too.
	// +optional
	Registered *TemplateKey `json:"registered,omitempty"`
}

// TemplateKey identifies a template in the database: tasks are created by
// namespace name, name and version.
type TemplateKey struct {
	// namespaceName is the workflow namespace.
	// +required
	// +kubebuilder:validation:MaxLength=40
	NamespaceName string `json:"namespaceName"`

	// name is the template name.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name"`

	// version is the template version.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Version string `json:"version"`
}

// TaskTemplate is a workflow template. The operator validates its spec and
// registers it in the database, keyed by namespace name, name and version, so
// that tasks can be created from it; deleting the resource retires the template.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=tt,categories=tasker
// +kubebuilder:printcolumn:name="Namespace-Name",type=string,JSONPath=`.spec.namespaceName`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Steps",type=integer,JSONPath=`.status.stepCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TaskTemplate struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the workflow template.
	// +required
	Spec TaskTemplateSpec `json:"spec"`

	// status is what the controller last observed.
	// +optional
	Status TaskTemplateStatus `json:"status,omitzero"`
}

// TaskTemplateList is a list of TaskTemplates.
//
// +kubebuilder:object:root=true
type TaskTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the TaskTemplates.
	Items []TaskTemplate `json:"items"`
}
