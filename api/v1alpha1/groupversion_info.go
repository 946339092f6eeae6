// Package v1alpha1 holds version v1alpha1 of Tasker's Kubernetes API, group
// workflows.tasker.dev: TaskTemplate, a workflow template that the operator
// registers in the database, and WorkerPool, a Deployment of workers serving
// the queues of some workflow namespaces.
//
// The validation markers on these types are the first line of defence: the API
// server rejects what they can express (patterns, bounds, enums, unknown
// dependencies, duplicate step names). What they cannot express, such as
// dependency cycles and whether inputSchema is a valid JSON Schema, the
// TaskTemplate controller checks with the same code as the CLI
// (orchestration/template) and reports in the Ready condition.
//
// +kubebuilder:object:generate=true
// +groupName=workflows.tasker.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "workflows.tasker.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme. It is
	// apimachinery's builder: controller-runtime's scheme.Builder is deprecated because
	// API packages should not depend on controller-runtime.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers every kind of this package, and its list, under
// GroupVersion.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&TaskTemplate{}, &TaskTemplateList{},
		&WorkerPool{}, &WorkerPoolList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
