package manifests

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// objects are the rendered objects of one chart release or kustomization.
type objects []*unstructured.Unstructured

// ofKind returns the objects of the kind.
func (o objects) ofKind(kind string) objects {
	var out objects
	for _, obj := range o {
		if obj.GetKind() == kind {
			out = append(out, obj)
		}
	}
	return out
}

// has reports whether an object of the kind, namespace and name is rendered.
func (o objects) has(kind, namespace, name string) bool {
	return slices.ContainsFunc(o, func(obj *unstructured.Unstructured) bool {
		return obj.GetKind() == kind && obj.GetNamespace() == namespace && obj.GetName() == name
	})
}

// kinds counts the objects of each kind.
func (o objects) kinds() map[string]int {
	counts := map[string]int{}
	for _, obj := range o {
		counts[obj.GetKind()]++
	}
	return counts
}

// typed converts the objects of the kind into T.
func typed[T any](t *testing.T, o objects, kind string) []*T {
	t.Helper()
	var out []*T
	for _, obj := range o.ofKind(kind) {
		v := new(T)
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, v), "%s", describe(obj))
		out = append(out, v)
	}
	return out
}

// checkWiring checks the references between the rendered objects that the
// API server does not check: what Services, budgets, policies and
// ServiceMonitors select, the ports they name, the accounts, roles and
// Secrets objects refer to. external names the Secrets and ServiceAccounts
// the objects may use without rendering them (the user creates those).
func checkWiring(t *testing.T, objs objects, external ...string) {
	t.Helper()
	deployments := typed[appsv1.Deployment](t, objs, "Deployment")
	require.NotEmpty(t, deployments)
	for _, d := range deployments {
		checkPodReferences(t, objs, d, external)
	}
	for _, svc := range typed[corev1.Service](t, objs, "Service") {
		d := selectedDeployment(t, "Service "+svc.Name, deployments, svc.Namespace, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
		for _, port := range svc.Spec.Ports {
			require.Contains(t, containerPorts(d), port.TargetPort.String(), "Service %s: targetPort %s is no port of Deployment %s", svc.Name, port.TargetPort.String(), d.Name)
		}
	}
	for _, pdb := range typed[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget") {
		selectedDeployment(t, "PodDisruptionBudget "+pdb.Name, deployments, pdb.Namespace, pdb.Spec.Selector)
	}
	for _, np := range typed[networkingv1.NetworkPolicy](t, objs, "NetworkPolicy") {
		d := selectedDeployment(t, "NetworkPolicy "+np.Name, deployments, np.Namespace, &np.Spec.PodSelector)
		for _, rule := range np.Spec.Ingress {
			for _, port := range rule.Ports {
				require.Contains(t, containerPorts(d), port.Port.String(), "NetworkPolicy %s: port %s is no port of Deployment %s", np.Name, port.Port.String(), d.Name)
			}
		}
	}
	checkServiceMonitors(t, objs)
	checkBindings(t, objs, external)
}

// checkPodReferences checks what a Deployment's pods refer to: their
// service account, the ports their probes name, and the Secrets they read.
func checkPodReferences(t *testing.T, objs objects, d *appsv1.Deployment, external []string) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if sa := spec.ServiceAccountName; sa != "" && sa != "default" && !slices.Contains(external, sa) {
		require.True(t, objs.has("ServiceAccount", d.Namespace, sa), "Deployment %s: its ServiceAccount %s is neither rendered nor expected", d.Name, sa)
	}
	secretOK := func(name string) bool {
		return objs.has("Secret", d.Namespace, name) || slices.Contains(external, name)
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			require.True(t, secretOK(v.Secret.SecretName), "Deployment %s: volume %s reads Secret %s, which is neither rendered nor expected", d.Name, v.Name, v.Secret.SecretName)
		}
	}
	for _, c := range spec.Containers {
		ports := []string{}
		for _, p := range c.Ports {
			ports = append(ports, p.Name)
		}
		for _, probe := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
			if probe != nil && probe.HTTPGet != nil {
				require.Contains(t, ports, probe.HTTPGet.Port.String(), "Deployment %s: a probe names port %s", d.Name, probe.HTTPGet.Port.String())
			}
		}
		for _, env := range c.Env {
			if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil {
				ref := env.ValueFrom.SecretKeyRef
				require.True(t, secretOK(ref.Name), "Deployment %s: %s reads Secret %s, which is neither rendered nor expected", d.Name, env.Name, ref.Name)
			}
		}
	}
}

// selectedDeployment returns the one Deployment whose pods the selector
// selects in the namespace, failing the test unless there is exactly one.
func selectedDeployment(t *testing.T, what string, deployments []*appsv1.Deployment, namespace string, selector *metav1.LabelSelector) *appsv1.Deployment {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(selector)
	require.NoError(t, err, what)
	require.False(t, sel.Empty(), "%s selects every pod", what)
	var found []*appsv1.Deployment
	for _, d := range deployments {
		if d.Namespace == namespace && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			found = append(found, d)
		}
	}
	require.Len(t, found, 1, "%s must select the pods of exactly one Deployment", what)
	return found[0]
}

// containerPorts are the port names of a Deployment's containers.
func containerPorts(d *appsv1.Deployment) []string {
	var ports []string
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			ports = append(ports, p.Name)
		}
	}
	return ports
}

// checkServiceMonitors checks that each ServiceMonitor selects one rendered
// Service in its namespace and scrapes ports that Service has.
func checkServiceMonitors(t *testing.T, objs objects) {
	t.Helper()
	services := typed[corev1.Service](t, objs, "Service")
	for _, sm := range objs.ofKind("ServiceMonitor") {
		matchLabels, _, err := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		require.NoError(t, err)
		require.NotEmpty(t, matchLabels, "ServiceMonitor %s selects every Service", sm.GetName())
		var found []*corev1.Service
		for _, svc := range services {
			if svc.Namespace == sm.GetNamespace() && labels.SelectorFromSet(matchLabels).Matches(labels.Set(svc.Labels)) {
				found = append(found, svc)
			}
		}
		require.Len(t, found, 1, "ServiceMonitor %s must select exactly one Service", sm.GetName())
		endpoints, _, err := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		require.NoError(t, err)
		require.NotEmpty(t, endpoints)
		var ports []string
		for _, p := range found[0].Spec.Ports {
			ports = append(ports, p.Name)
		}
		for _, e := range endpoints {
			port, _, _ := unstructured.NestedString(e.(map[string]any), "port")
			require.Contains(t, ports, port, "ServiceMonitor %s scrapes port %q of Service %s", sm.GetName(), port, found[0].Name)
		}
	}
}

// checkBindings checks that every binding refers to a rendered role and
// binds rendered (or external) ServiceAccounts.
func checkBindings(t *testing.T, objs objects, external []string) {
	t.Helper()
	subjectsOK := func(what string, subjects []rbacv1.Subject) {
		require.NotEmpty(t, subjects, what)
		for _, s := range subjects {
			require.Equal(t, rbacv1.ServiceAccountKind, s.Kind, what)
			require.True(t, objs.has("ServiceAccount", s.Namespace, s.Name) || slices.Contains(external, s.Name),
				"%s binds ServiceAccount %s/%s, which is neither rendered nor expected", what, s.Namespace, s.Name)
		}
	}
	for _, b := range typed[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding") {
		require.Equal(t, "ClusterRole", b.RoleRef.Kind)
		require.True(t, objs.has("ClusterRole", "", b.RoleRef.Name), "ClusterRoleBinding %s: no ClusterRole %s", b.Name, b.RoleRef.Name)
		subjectsOK("ClusterRoleBinding "+b.Name, b.Subjects)
	}
	for _, b := range typed[rbacv1.RoleBinding](t, objs, "RoleBinding") {
		require.Equal(t, "Role", b.RoleRef.Kind)
		require.True(t, objs.has("Role", b.Namespace, b.RoleRef.Name), "RoleBinding %s: no Role %s in %s", b.Name, b.RoleRef.Name, b.Namespace)
		subjectsOK("RoleBinding "+b.Name, b.Subjects)
	}
}
