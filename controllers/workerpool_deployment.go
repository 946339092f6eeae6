package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
)

// The labels of a pool's Deployment and pods. The selector uses name and
// instance, so it matches the pods of this pool and nothing else.
const (
	poolLabelName      = "app.kubernetes.io/name"
	poolLabelInstance  = "app.kubernetes.io/instance"
	poolLabelManagedBy = "app.kubernetes.io/managed-by"
	poolAppName        = "tasker-worker"
	poolManagedBy      = "tasker-operator"
)

// The shape of the worker pod.
const (
	// poolFieldOwner is the server-side apply field manager of the
	// Deployment.
	poolFieldOwner = "tasker-operator"
	// poolContainerName is the worker container's name.
	poolContainerName = "worker"
	// poolHealthPort serves /healthz, /readyz and /metrics.
	poolHealthPort     int32 = 8081
	poolHealthPortName       = "metrics"
	// poolTerminationGraceSeconds exceeds the worker's 30 s shutdown grace,
	// so running steps finish or are handed back before SIGKILL.
	poolTerminationGraceSeconds int64 = 45
	// poolTmpVolume is a writable /tmp on the read-only root file system.
	poolTmpVolume = "tmp"
)

// poolSelector returns the labels that select the pool's pods.
func poolSelector(pool *workflowsv1alpha1.WorkerPool) map[string]string {
	return map[string]string{poolLabelName: poolAppName, poolLabelInstance: pool.Name}
}

// poolSelectorString returns the pool's selector in string form, for the
// scale subresource.
func poolSelectorString(pool *workflowsv1alpha1.WorkerPool) string {
	return labels.SelectorFromSet(poolSelector(pool)).String()
}

// poolLabels returns the labels of the pool's Deployment and pods.
func poolLabels(pool *workflowsv1alpha1.WorkerPool) map[string]string {
	l := poolSelector(pool)
	l[poolLabelManagedBy] = poolManagedBy
	return l
}

// readDeployment is the step that reads the pool's Deployment from the API
// server. A Deployment of that name that the pool does not control is a
// blocker: the controller never takes over what it did not create.
func (r *workerPoolReconciler) readDeployment(ctx context.Context, s *poolState) error {
	var deployment appsv1.Deployment
	key := types.NamespacedName{Namespace: s.pool.Namespace, Name: s.pool.Name}
	err := r.reader.Get(ctx, key, &deployment)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Deployment %s: %w", key, err)
	}
	if !metav1.IsControlledBy(&deployment, s.pool) {
		s.blocker = &poolBlocker{poolReasonDeploymentConflict, fmt.Sprintf(
			"Deployment %s exists and is not controlled by this WorkerPool; delete that Deployment or give the pool another name", key)}
		return nil
	}
	s.deployment = &deployment
	return nil
}

// applyDeployment is the step that decides the replica count and applies
// the Deployment (server-side apply: one request, a no-op when nothing
// changed). A spec change changes the pod template, which rolls the
// Deployment. A Deployment the API server rejects is a blocker carrying the
// server's message.
func (r *workerPoolReconciler) applyDeployment(ctx context.Context, s *poolState) error {
	if s.deployment == nil {
		if deleting, err := r.poolBeingDeleted(ctx, s.pool); err != nil || deleting {
			return err
		}
	}
	var from int32
	if s.deployment != nil && s.deployment.Spec.Replicas != nil {
		from = *s.deployment.Spec.Replicas
	}
	to, cause := poolReplicas(s, from)
	desired, err := buildPoolDeployment(s.pool, r.opts.DefaultImage, to)
	if err != nil {
		return err
	}
	err = r.client.Apply(ctx, desired, client.FieldOwner(poolFieldOwner), client.ForceOwnership)
	if apierrors.IsInvalid(err) {
		s.blocker = &poolBlocker{poolReasonDeploymentRejected, "the API server rejected the worker Deployment: " + err.Error()}
		return nil
	}
	if err != nil {
		return fmt.Errorf("applying Deployment %s/%s: %w", s.pool.Namespace, s.pool.Name, err)
	}
	applied, err := poolConvert[appsv1.Deployment](desired)
	if err != nil {
		return err
	}
	s.deployment, s.desired = applied, &to
	if to != from {
		r.recordScale(ctx, s, from, to, cause)
	}
	return nil
}

// poolBeingDeleted reads the pool from the API server, not the cache: the
// cache may not show yet that a pool is being deleted, and creating its
// Deployment again then would race the garbage collector.
func (r *workerPoolReconciler) poolBeingDeleted(ctx context.Context, pool *workflowsv1alpha1.WorkerPool) (bool, error) {
	current := &workflowsv1alpha1.WorkerPool{}
	err := r.reader.Get(ctx, client.ObjectKeyFromObject(pool), current)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading WorkerPool %s/%s: %w", pool.Namespace, pool.Name, err)
	}
	return !current.DeletionTimestamp.IsZero() || current.UID != pool.UID, nil
}

// buildPoolDeployment returns the Deployment that runs pool with replicas
// workers, controlled by the pool.
func buildPoolDeployment(pool *workflowsv1alpha1.WorkerPool, defaultImage string, replicas int32) (*appsv1ac.DeploymentApplyConfiguration, error) {
	podSpec, err := poolPodSpec(pool, defaultImage)
	if err != nil {
		return nil, err
	}
	owner := metav1ac.OwnerReference().
		WithAPIVersion(workflowsv1alpha1.GroupVersion.String()).WithKind("WorkerPool").
		WithName(pool.Name).WithUID(pool.UID).
		WithController(true).WithBlockOwnerDeletion(true)
	return appsv1ac.Deployment(pool.Name, pool.Namespace).
		WithLabels(poolLabels(pool)).
		WithOwnerReferences(owner).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(poolSelector(pool))).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(poolLabels(pool)).
				WithSpec(podSpec))), nil
}

// poolPassThrough holds the fields of a pool's spec that the pod template
// takes as they are. Its JSON names are the spec's, so one JSON round trip
// turns the spec's API types into apply configurations, exactly.
type poolPassThrough struct {
	Env         []corev1ac.EnvVarApplyConfiguration              `json:"env,omitempty"`
	Tolerations []corev1ac.TolerationApplyConfiguration          `json:"tolerations,omitempty"`
	Affinity    *corev1ac.AffinityApplyConfiguration             `json:"affinity,omitempty"`
	Resources   *corev1ac.ResourceRequirementsApplyConfiguration `json:"resources,omitempty"`
}

// poolPodSpec returns the pod spec of the pool's workers.
func poolPodSpec(pool *workflowsv1alpha1.WorkerPool, defaultImage string) (*corev1ac.PodSpecApplyConfiguration, error) {
	pass, err := poolConvert[poolPassThrough](pool.Spec)
	if err != nil {
		return nil, err
	}
	spec := corev1ac.PodSpec().
		WithContainers(poolContainer(pool, defaultImage, pass)).
		WithTerminationGracePeriodSeconds(poolTerminationGraceSeconds).
		WithVolumes(corev1ac.Volume().WithName(poolTmpVolume).WithEmptyDir(corev1ac.EmptyDirVolumeSource())).
		WithAffinity(pass.Affinity)
	if len(pool.Spec.NodeSelector) > 0 {
		spec.WithNodeSelector(pool.Spec.NodeSelector)
	}
	if pool.Spec.ServiceAccountName != "" {
		spec.WithServiceAccountName(pool.Spec.ServiceAccountName)
	}
	for i := range pass.Tolerations {
		spec.WithTolerations(&pass.Tolerations[i])
	}
	return spec, nil
}

// poolContainer returns the worker container: `tasker worker` for the
// pool's namespaces, with probes, the metrics port and a non-root,
// read-only security context.
func poolContainer(pool *workflowsv1alpha1.WorkerPool, defaultImage string, pass *poolPassThrough) *corev1ac.ContainerApplyConfiguration {
	image := pool.Spec.Image
	if image == "" {
		image = defaultImage
	}
	return corev1ac.Container().
		WithName(poolContainerName).
		WithImage(image).
		WithArgs(poolWorkerArgs(pool)...).
		WithEnv(poolEnv(pool, pass.Env)...).
		WithPorts(corev1ac.ContainerPort().WithName(poolHealthPortName).WithContainerPort(poolHealthPort).WithProtocol(corev1.ProtocolTCP)).
		WithLivenessProbe(poolProbe("/healthz", 10)).
		WithReadinessProbe(poolProbe("/readyz", 5)).
		WithResources(pass.Resources).
		WithSecurityContext(corev1ac.SecurityContext().
			WithRunAsNonRoot(true).
			WithReadOnlyRootFilesystem(true).
			WithAllowPrivilegeEscalation(false).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
		WithVolumeMounts(corev1ac.VolumeMount().WithName(poolTmpVolume).WithMountPath("/tmp"))
}

// poolWorkerArgs returns the worker's command line. The namespaces are
// sorted, so reordering spec.namespaces does not roll the pods.
func poolWorkerArgs(pool *workflowsv1alpha1.WorkerPool) []string {
	concurrency := pool.Spec.Concurrency
	if concurrency < 1 {
		concurrency = 16 // the CRD's default, for objects stored before it
	}
	return []string{
		"worker",
		"--namespaces=" + strings.Join(slices.Sorted(slices.Values(pool.Spec.Namespaces)), ","),
		"--concurrency=" + strconv.Itoa(int(concurrency)),
		"--health-listen=:" + strconv.Itoa(int(poolHealthPort)),
	}
}

// poolEnv returns the worker's environment: the database URL from the
// pool's Secret, the worker id from the pod's name, then spec.env.
func poolEnv(pool *workflowsv1alpha1.WorkerPool, extra []corev1ac.EnvVarApplyConfiguration) []*corev1ac.EnvVarApplyConfiguration {
	env := []*corev1ac.EnvVarApplyConfiguration{
		corev1ac.EnvVar().WithName(poolEnvDatabaseURL).WithValueFrom(corev1ac.EnvVarSource().
			WithSecretKeyRef(corev1ac.SecretKeySelector().
				WithName(pool.Spec.Database.SecretRef.Name).WithKey(poolSecretKey(pool)))),
		corev1ac.EnvVar().WithName(poolEnvWorkerID).WithValueFrom(corev1ac.EnvVarSource().
			WithFieldRef(corev1ac.ObjectFieldSelector().WithFieldPath("metadata.name"))),
	}
	for i := range extra {
		env = append(env, &extra[i])
	}
	return env
}

// poolProbe returns an HTTP probe of path on the health port.
func poolProbe(path string, periodSeconds int32) *corev1ac.ProbeApplyConfiguration {
	return corev1ac.Probe().
		WithHTTPGet(corev1ac.HTTPGetAction().WithPath(path).WithPort(intstr.FromInt32(poolHealthPort))).
		WithPeriodSeconds(periodSeconds).
		WithTimeoutSeconds(3). // /readyz gives the database 2 s
		WithFailureThreshold(3)
}

// poolConvert converts between two types with the same JSON form, such as
// an API type and its apply configuration.
func poolConvert[T any](from any) (*T, error) {
	raw, err := json.Marshal(from)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", from, err)
	}
	to := new(T)
	if err := json.Unmarshal(raw, to); err != nil {
		return nil, fmt.Errorf("decoding %T as %T: %w", from, to, err)
	}
	return to, nil
}
