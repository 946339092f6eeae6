package manifests

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestKustomize builds the kustomizations in config/ and has the API server
// validate every object they render.
func TestKustomize(t *testing.T) {
	k := cluster.get(t)

	t.Run("config_default", func(t *testing.T) {
		t.Parallel()
		objs := objects(decodeObjects(t, kustomize(t).mustRun(t, "build", "config/default")))
		require.Equal(t, map[string]int{
			"Namespace": 1, "CustomResourceDefinition": 2, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
			"Role": 1, "RoleBinding": 1, "Deployment": 1,
		}, objs.kinds())
		for _, obj := range objs {
			if obj.GetKind() != "CustomResourceDefinition" && obj.GetKind() != "Namespace" {
				require.True(t, strings.HasPrefix(obj.GetName(), "tasker-"), "%s: names are prefixed tasker-", describe(obj))
			}
			namespaced, err := k.namespaced(obj)
			require.NoError(t, err)
			if namespaced {
				require.Equal(t, "tasker-system", obj.GetNamespace(), describe(obj))
			}
		}
		require.Equal(t, "tasker-system", objs.ofKind("Namespace")[0].GetName())
		k.dryRunApply(t, objs, "")
		checkWiring(t, objs, "tasker-db")
		checkFlags(t, objs)
		checkRestricted(t, k, objs)

		// The workers run the manager's own image unless a WorkerPool says otherwise.
		manager := deploymentNamed(t, objs, "-controller-manager").Spec.Template.Spec.Containers[0]
		require.Contains(t, manager.Env, corev1.EnvVar{Name: "TASKER_WORKER_IMAGE", Value: manager.Image})
		require.Equal(t, "ghcr.io/taskerops/tasker:v0.1.0", manager.Image)
	})

	// Each base builds and applies on its own too.
	for _, dir := range []string{"config/crd", "config/rbac", "config/manager"} {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			t.Parallel()
			objs := decodeObjects(t, kustomize(t).mustRun(t, "build", dir))
			k.dryRunApply(t, objs, "")
		})
	}

	t.Run("config_samples", func(t *testing.T) {
		t.Parallel()
		objs := objects(decodeObjects(t, kustomize(t).mustRun(t, "build", "config/samples")))
		require.Equal(t, map[string]int{"TaskTemplate": 5, "WorkerPool": 1}, objs.kinds())
		k.dryRunApply(t, objs, "samples")
	})
}

// TestDryRunRefusesInvalidObjects makes sure that the dry-run applies above
// really are validated: the API server refuses what core validation, CRD
// schemas and unknown fields make invalid, naming the field.
func TestDryRunRefusesInvalidObjects(t *testing.T) {
	k := cluster.get(t)
	k.createNamespace(t, "refusals")
	cases := []struct{ name, manifest, want string }{
		{
			"core_validation", `{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad", "namespace": "refusals"},
			"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
			"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"name": "Not_A_Port_Name", "containerPort": 1}]}]}}}}`,
			"spec.template.spec.containers[0].ports[0].name: Invalid value",
		},
		{
			"unknown_field", `{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad", "namespace": "refusals"},
			"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
			"spec": {"containers": [{"name": "c", "image": "i", "readinesProbe": {}}]}}}}`,
			".readinesProbe: field not declared in schema",
		},
		{
			"tasktemplate_schema", `{"apiVersion": "workflows.tasker.dev/v1alpha1", "kind": "TaskTemplate", "metadata": {"name": "bad", "namespace": "refusals"},
			"spec": {"namespaceName": "demo", "version": "not-semver", "steps": [{"name": "a", "handler": {"callable": "demo.A"}}]}}`,
			"spec.version: Invalid value",
		},
		{
			"servicemonitor_schema", `{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "bad", "namespace": "refusals"},
			"spec": {"selector": {}, "endpoints": [{"port": "http", "scheme": "gopher"}]}}`,
			"spec.endpoints[0].scheme: Unsupported value",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			obj := decodeObjects(t, tc.manifest)[0]
			err := k.client.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(obj), client.DryRunAll, fieldOwner, client.ForceOwnership)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
