package controllers

import (
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
)

// buildTestDeployment builds pool's Deployment and returns it as the API
// type, for assertions.
func buildTestDeployment(t *testing.T, pool *workflowsv1alpha1.WorkerPool, replicas int32) *appsv1.Deployment {
	t.Helper()
	desired, err := buildPoolDeployment(pool, "ghcr.io/taskerops/tasker:default", replicas)
	require.NoError(t, err)
	deployment, err := poolConvert[appsv1.Deployment](desired)
	require.NoError(t, err)
	return deployment
}

func TestWorkerPoolBuildDeployment(t *testing.T) {
	t.Parallel()

	minimalPool := func() *workflowsv1alpha1.WorkerPool {
		return &workflowsv1alpha1.WorkerPool{
			ObjectMeta: metav1.ObjectMeta{Name: "workers", Namespace: "ns", UID: "uid-1"},
			Spec: workflowsv1alpha1.WorkerPoolSpec{
				Namespaces:  []string{"tree_workflow", "linear_workflow"},
				Concurrency: 8,
				Database:    workflowsv1alpha1.WorkerPoolDatabase{SecretRef: workflowsv1alpha1.SecretKeyRef{Name: "db", Key: "dsn"}},
			},
		}
	}

	t.Run("Minimal", func(t *testing.T) {
		t.Parallel()
		d := buildTestDeployment(t, minimalPool(), 2)
		require.Equal(t, "workers", d.Name)
		require.Equal(t, "ns", d.Namespace)
		require.Equal(t, int32(2), *d.Spec.Replicas)
		require.Equal(t, map[string]string{
			"app.kubernetes.io/name": "tasker-worker", "app.kubernetes.io/instance": "workers",
		}, d.Spec.Selector.MatchLabels)
		require.Equal(t, d.Labels, d.Spec.Template.Labels)
		require.Equal(t, "tasker-operator", d.Labels["app.kubernetes.io/managed-by"])
		require.Equal(t, []metav1.OwnerReference{{
			APIVersion: "workflows.tasker.dev/v1alpha1", Kind: "WorkerPool", Name: "workers", UID: "uid-1",
			Controller: new(true), BlockOwnerDeletion: new(true),
		}}, d.OwnerReferences)

		pod := d.Spec.Template.Spec
		require.Equal(t, int64(45), *pod.TerminationGracePeriodSeconds)
		require.Len(t, pod.Containers, 1)
		c := pod.Containers[0]
		require.Equal(t, "worker", c.Name)
		require.Equal(t, "ghcr.io/taskerops/tasker:default", c.Image)
		require.Equal(t, []string{"worker", "--namespaces=linear_workflow,tree_workflow", "--concurrency=8", "--health-listen=:8081"}, c.Args)
		require.Equal(t, []corev1.EnvVar{
			{Name: "TASKER_DATABASE_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "dsn",
			}}},
			{Name: "TASKER_WORKER_ID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		}, c.Env)
		require.Equal(t, []corev1.ContainerPort{{Name: "metrics", ContainerPort: 8081, Protocol: corev1.ProtocolTCP}}, c.Ports)
		require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
		require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
		require.Equal(t, intstr.FromInt32(8081), c.ReadinessProbe.HTTPGet.Port)
		require.Equal(t, &corev1.SecurityContext{
			RunAsNonRoot: new(true), ReadOnlyRootFilesystem: new(true), AllowPrivilegeEscalation: new(false),
			Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}, c.SecurityContext)
		require.Equal(t, []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}, c.VolumeMounts)
		require.Empty(t, c.Resources)
		require.Nil(t, pod.Affinity)
		require.Empty(t, pod.Tolerations)
		require.Empty(t, pod.NodeSelector)
		require.Empty(t, pod.ServiceAccountName)
	})

	t.Run("PassesSchedulingAndResourcesThrough", func(t *testing.T) {
		t.Parallel()
		pool := minimalPool()
		pool.Spec.Image = "example.com/my-handlers:1.2.3"
		pool.Spec.Resources = &corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		}
		pool.Spec.Env = []corev1.EnvVar{
			{Name: "LOG_LEVEL", Value: "debug"},
			{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		}
		pool.Spec.NodeSelector = map[string]string{"pool": "workers"}
		pool.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "tasker", Effect: corev1.TaintEffectNoSchedule}}
		pool.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}},
			}}},
		}}
		pool.Spec.ServiceAccountName = "tasker-worker"

		d := buildTestDeployment(t, pool, 0)
		pod := d.Spec.Template.Spec
		c := pod.Containers[0]
		require.Equal(t, "example.com/my-handlers:1.2.3", c.Image)
		require.Equal(t, *pool.Spec.Resources, c.Resources)
		require.Equal(t, pool.Spec.Env, c.Env[2:], "spec.env follows the operator's variables")
		require.Equal(t, pool.Spec.NodeSelector, pod.NodeSelector)
		require.Equal(t, pool.Spec.Tolerations, pod.Tolerations)
		require.Equal(t, pool.Spec.Affinity, pod.Affinity)
		require.Equal(t, "tasker-worker", pod.ServiceAccountName)
	})

	t.Run("DefaultsForObjectsStoredWithoutThem", func(t *testing.T) {
		t.Parallel()
		pool := minimalPool()
		pool.Spec.Concurrency = 0
		pool.Spec.Database.SecretRef.Key = ""
		c := buildTestDeployment(t, pool, 1).Spec.Template.Spec.Containers[0]
		require.Contains(t, c.Args, "--concurrency=16")
		require.Equal(t, "url", c.Env[0].ValueFrom.SecretKeyRef.Key)
	})
}
