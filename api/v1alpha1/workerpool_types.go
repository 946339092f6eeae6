package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkerPoolSpec describes a pool of `tasker worker` pods serving the queues of some
// workflow namespaces.
type WorkerPoolSpec struct {
	// namespaces are the workflow namespaces whose queues ("<namespace>_queue") the
	// pool serves, as in TaskTemplate spec.namespaceName.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=40
	// +kubebuilder:validation:items:Pattern=`^[a-z_][a-z0-9_]*$`
	Namespaces []string `json:"namespaces"`

	// image is the container image of the workers. When empty, the operator's own
	// image is used: it holds the same tasker binary.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image,omitempty"`

	// replicas is the number of worker pods while autoscaling is absent. The scale
	// subresource sets it, so `kubectl scale` works.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	Replicas *int32 `json:"replicas,omitempty"`

	// autoscaling, when set, makes the controller size the pool from the depth of
	// its queues and the steps in flight, and replicas is ignored.
	// +optional
	Autoscaling *WorkerPoolAutoscaling `json:"autoscaling,omitempty"`

	// concurrency is the number of step handlers each pod runs at once.
	// +optional
	// +kubebuilder:default=16
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	Concurrency int32 `json:"concurrency,omitempty"`

	// database says where the workers find the PostgreSQL connection URL.
	// +required
	Database WorkerPoolDatabase `json:"database"`

	// resources are the compute resources of the worker container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// env adds environment variables to the worker container.
	// +optional
	// +listType=map
	// +listMapKey=name
	Env []corev1.EnvVar `json:"env,omitempty"`

	// nodeSelector constrains the worker pods to nodes with these labels.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations let the worker pods run on tainted nodes.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// affinity holds the scheduling constraints of the worker pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// serviceAccountName is the ServiceAccount the worker pods run as. When empty,
	// the namespace's default ServiceAccount is used.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
}

// WorkerPoolAutoscaling sizes a pool from its work: the controller sets the replica
// count to ceil((queue depth + steps in flight) / targetStepsPerReplica) within
// [minReplicas, maxReplicas], scales down only after scaleDownDelaySeconds, and
// scales up from zero as soon as work appears.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not be greater than maxReplicas",fieldPath=".minReplicas",reason=FieldValueInvalid
type WorkerPoolAutoscaling struct {
	// minReplicas is the smallest number of pods; 0 lets an idle pool scale to zero.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	MinReplicas int32 `json:"minReplicas,omitempty"`

	// maxReplicas is the largest number of pods.
	// +required
	// +kubebuilder:validation:Minimum=1
	MaxReplicas int32 `json:"maxReplicas"`

	// targetStepsPerReplica is the amount of work (queued plus in-flight steps) one
	// pod is sized for.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	TargetStepsPerReplica int32 `json:"targetStepsPerReplica,omitempty"`

	// scaleDownDelaySeconds is how long the work must stay low before the pool
	// shrinks; 0 shrinks at once.
	// +optional
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=0
	ScaleDownDelaySeconds *int32 `json:"scaleDownDelaySeconds,omitempty"`
}

// WorkerPoolDatabase says where the workers find the database.
type WorkerPoolDatabase struct {
	// secretRef names the key of a Secret, in the WorkerPool's namespace, that holds
	// the PostgreSQL connection URL.
	// +required
	SecretRef SecretKeyRef `json:"secretRef"`
}

// SecretKeyRef names one key of a Secret in the referring object's namespace.
type SecretKeyRef struct {
	// name is the name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key is the key of the Secret's data that holds the value.
	// +optional
	// +kubebuilder:default=url
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// WorkerPoolStatus is what the controller last observed of a WorkerPool and its
// Deployment.
type WorkerPoolStatus struct {
	// replicas is the number of worker pods of the Deployment.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas,omitempty"`

	// readyReplicas is the number of worker pods that are ready.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// desiredReplicas is the replica count the controller last chose: spec.replicas,
	// or the autoscaler's decision.
	// +optional
	// +kubebuilder:validation:Minimum=0
	DesiredReplicas int32 `json:"desiredReplicas,omitempty"`

	// queueDepth is the number of step messages waiting in the pool's queues at the
	// last observation.
	// +optional
	// +kubebuilder:validation:Minimum=0
	QueueDepth int64 `json:"queueDepth,omitempty"`

	// inFlightSteps is the number of steps of the pool's namespaces being run at the
	// last observation.
	// +optional
	// +kubebuilder:validation:Minimum=0
	InFlightSteps int64 `json:"inFlightSteps,omitempty"`

	// lastScaleTime is when the controller last changed the replica count.
	// +optional
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`

	// conditions describe the pool's state, such as Ready and Available.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the metadata.generation the status describes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// selector is the label selector of the pool's pods in string form, for the
	// scale subresource (and so for HorizontalPodAutoscalers).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Selector string `json:"selector,omitempty"`
}

// WorkerPool is a pool of workers: the operator turns it into a Deployment of the
// same name running `tasker worker` for the pool's namespaces.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:scope=Namespaced,shortName=wp,categories=tasker
// +kubebuilder:printcolumn:name="Namespaces",type=string,JSONPath=`.spec.namespaces`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredReplicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Queue-Depth",type=integer,JSONPath=`.status.queueDepth`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkerPool struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the pool.
	// +required
	Spec WorkerPoolSpec `json:"spec"`

	// status is what the controller last observed.
	// +optional
	Status WorkerPoolStatus `json:"status,omitzero"`
}

// WorkerPoolList is a list of WorkerPools.
//
// +kubebuilder:object:root=true
type WorkerPoolList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the WorkerPools.
	Items []WorkerPool `json:"items"`
}
