package manifests

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// chartDir is the chart, relative to the repository's root.
const chartDir = "charts/tasker-operator"

// everyFeatureValues turns every optional feature of the chart on.
const everyFeatureValues = "test/manifests/testdata/every-feature-values.yaml"

// chartCase is one way to install the chart.
type chartCase struct {
	name, release, namespace string
	// args are the values arguments (-f FILE, --set K=V).
	args []string
	// kinds counts the objects of each kind the release renders.
	kinds map[string]int
	// external are the Secrets and ServiceAccounts the release uses without
	// creating them.
	external []string
	// workerImage is the manager's --worker-image.
	workerImage string
}

var chartCases = []chartCase{
	{
		name: "default_values", release: "tasker", namespace: "tasker-system",
		kinds: map[string]int{
			"CustomResourceDefinition": 2, "ServiceAccount": 2, "Secret": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
			"Role": 1, "RoleBinding": 1, "Service": 2, "Deployment": 2, "PodDisruptionBudget": 1,
		},
		external:    []string{"tasker-db"},
		workerImage: "ghcr.io/taskerops/tasker:v0.1.0",
	},
	{
		name: "every_feature", release: "acme", namespace: "acme-workflows",
		args: []string{"-f", everyFeatureValues},
		kinds: map[string]int{
			"CustomResourceDefinition": 2, "ServiceAccount": 2, "Secret": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
			"Role": 1, "RoleBinding": 1, "Service": 2, "Deployment": 2, "PodDisruptionBudget": 1,
			"ServiceMonitor": 2, "NetworkPolicy": 2,
		},
		external:    []string{"acme-api-credentials"},
		workerImage: "registry.example.com/platform/tasker-workers:v9.9.9",
	},
	{
		name: "minimal", release: "tasker-min", namespace: "tasker-min",
		args: []string{
			"--set", "orchestrator.apiToken.enabled=false", "--set", "orchestrator.podDisruptionBudget.enabled=false",
			"--set", "manager.metrics.enabled=false", "--set", "manager.serviceAccount.create=false",
			"--set", "manager.serviceAccount.name=platform-operator", "--set", "orchestrator.serviceAccount.create=false",
			"--set", "networkPolicy.enabled=true", "--set", "metrics.serviceMonitor.enabled=true",
		},
		kinds: map[string]int{
			"CustomResourceDefinition": 2, "ClusterRole": 1, "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1,
			"Service": 1, "Deployment": 2, "ServiceMonitor": 1, "NetworkPolicy": 2,
		},
		external:    []string{"tasker-db", "platform-operator"},
		workerImage: "ghcr.io/taskerops/tasker:v0.1.0",
	},
}

// TestChart lints the chart, renders it in several configurations and has
// the API server validate every object and its pods' security, then checks
// what the API server cannot: references between the objects and tasker's
// flags.
func TestChart(t *testing.T) {
	k := cluster.get(t)
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := helm(t)
			h.mustRun(t, append([]string{"lint", "--strict", "--kube-version", k.version, chartDir}, tc.args...)...)
			objs := renderChart(t, h, k.version, tc.release, tc.namespace, tc.args...)
			require.Equal(t, tc.kinds, objs.kinds())
			for _, obj := range objs {
				namespaced, err := k.namespaced(obj)
				require.NoError(t, err)
				if namespaced {
					require.Equal(t, tc.namespace, obj.GetNamespace(), "%s must name the release namespace", describe(obj))
				}
			}
			k.dryRunApply(t, objs, tc.namespace)
			checkWiring(t, objs, tc.external...)
			checkFlags(t, objs)
			checkRestricted(t, k, objs)
			manager := deploymentNamed(t, objs, "-manager")
			require.Contains(t, manager.Spec.Template.Spec.Containers[0].Args, "--worker-image="+tc.workerImage)
		})
	}
}

// renderChart runs helm template, CRDs included, and decodes the objects;
// an empty kubeVersion leaves helm's default.
func renderChart(t *testing.T, h tool, kubeVersion, release, namespace string, args ...string) objects {
	t.Helper()
	cmd := []string{"template", release, chartDir, "--namespace", namespace, "--include-crds"}
	if kubeVersion != "" {
		cmd = append(cmd, "--kube-version", kubeVersion)
	}
	return decodeObjects(t, h.mustRun(t, append(cmd, args...)...))
}

// deploymentNamed returns the one rendered Deployment whose name ends with
// suffix.
func deploymentNamed(t *testing.T, objs objects, suffix string) *appsv1.Deployment {
	t.Helper()
	var found []*appsv1.Deployment
	for _, d := range typed[appsv1.Deployment](t, objs, "Deployment") {
		if len(d.Name) > len(suffix) && d.Name[len(d.Name)-len(suffix):] == suffix {
			found = append(found, d)
		}
	}
	require.Len(t, found, 1, "Deployments named *%s", suffix)
	return found[0]
}

// TestChartSchemaRejects checks that values.schema.json refuses wrong values
// with a message that names the field.
func TestChartSchemaRejects(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown_key", []string{"--set", "manager.replicaCount=2"}, "at '/manager': additional properties 'replicaCount' not allowed"},
		{"unknown_top_level_key", []string{"--set", "replicas=2"}, "at '': additional properties 'replicas' not allowed"},
		{"wrong_type", []string{"--set", "orchestrator.replicas=two"}, "at '/orchestrator/replicas': got string, want integer"},
		{"bad_enum", []string{"--set", "image.pullPolicy=Sometimes"}, "at '/image/pullPolicy': value must be one of"},
		{"bad_log_level", []string{"--set", "logging.level=verbose"}, "at '/logging/level'"},
		{"not_a_postgres_url", []string{"--set", "database.url=mysql://db/tasker"}, "at '/database/url'"},
		{"empty_secret_name", []string{"--set", "database.secretName="}, "at '/database/secretName'"},
		{"port_out_of_range", []string{"--set", "manager.healthPort=70000"}, "at '/manager/healthPort'"},
		{"bad_duration", []string{"--set", "manager.queuePoll=often"}, "at '/manager/queuePoll'"},
		{"bad_budget", []string{"--set", "orchestrator.podDisruptionBudget.maxUnavailable=half"}, "at '/orchestrator/podDisruptionBudget/maxUnavailable'"},
		{"peers_not_a_list", []string{"--set", "networkPolicy.apiFrom=everyone"}, "at '/networkPolicy/apiFrom': got string, want array"},
		{"bad_service_type", []string{"--set", "orchestrator.service.type=ExternalName"}, "at '/orchestrator/service/type'"},
		// Not a schema rule: the template refuses it, naming both values.
		{"replicas_without_leader_election", []string{"--set", "manager.replicas=2", "--set", "manager.leaderElection=false"}, "manager.replicas > 1 needs manager.leaderElection: true"},
	}
	h := helm(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := h.run(t, append([]string{"template", "tasker", chartDir}, tc.args...)...)
			require.ErrorContains(t, err, tc.want)
			if strings.HasPrefix(tc.want, "at '") { // helm lint reports a template's fail only as [INFO]
				_, err = h.run(t, append([]string{"lint", "--strict", chartDir}, tc.args...)...)
				require.ErrorContains(t, err, tc.want)
			}
		})
	}
}

// TestChartInstall installs the chart for real with helm, then upgrades it:
// the generated API token survives the upgrade, and the notes name objects
// that exist and commands that work.
func TestChartInstall(t *testing.T) {
	k := cluster.get(t)
	h := helm(t)
	h.env = append(h.env, "KUBECONFIG="+k.writeKubeconfig(t))
	const namespace = "helm-install"
	k.createNamespace(t, namespace)

	notes := h.mustRun(t, "install", "tasker", chartDir, "--namespace", namespace)
	token := apiToken(t, k, namespace, "tasker-api-token")
	require.Len(t, token, 48)

	h.mustRun(t, "upgrade", "tasker", chartDir, "--namespace", namespace, "--set", "orchestrator.replicas=3")
	require.Equal(t, token, apiToken(t, k, namespace, "tasker-api-token"), "an upgrade must keep the generated token")
	var orchestrator appsv1.Deployment
	require.NoError(t, k.client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "tasker-orchestrator"}, &orchestrator))
	require.Equal(t, int32(3), *orchestrator.Spec.Replicas)

	t.Run("notes", func(t *testing.T) {
		for _, want := range []string{
			"kubectl -n helm-install create secret generic tasker-db \\\n    --from-literal=url=",
			"kubectl -n helm-install apply -k config/samples",
			"port-forward svc/tasker-orchestrator 8080:8080",
			"get secret tasker-api-token -o jsonpath='{.data.token}'",
			"tasker task create linear_workflow mathematical_sequence",
			`"$TASKER_SERVER/v1/tasks"`,
			`-H "Authorization: Bearer $TASKER_TOKEN"`,
		} {
			require.Contains(t, notes, want)
		}
		var svc corev1.Service
		require.NoError(t, k.client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "tasker-orchestrator"}, &svc))
		flags := flagsOf(helpText(t, "task", "create"))
		for _, flag := range []string{"server", "token", "context", "watch"} {
			require.True(t, flags[flag], "the notes use `tasker task create --%s`", flag)
		}
	})
}

// apiToken reads the API token from the chart's Secret.
func apiToken(t *testing.T, k *kube, namespace, name string) string {
	t.Helper()
	var secret corev1.Secret
	require.NoError(t, k.client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, &secret))
	return string(secret.Data["token"])
}
