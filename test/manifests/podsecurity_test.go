package manifests

import (
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// restrictedNamespace enforces the restricted Pod Security Standard.
const restrictedNamespace = "restricted-pods"

// restrictedPods prepares the namespace that enforces the restricted Pod
// Security Standard, with the default ServiceAccount that the ServiceAccount
// admission plugin looks up (envtest runs no controller that creates it).
func (k *kube) restrictedPods(t *testing.T) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   restrictedNamespace,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	if err := k.client.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: restrictedNamespace}}
	if err := k.client.Create(t.Context(), sa); err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// checkRestricted creates (dry run) a pod from each Deployment's pod
// template in a namespace that enforces the restricted Pod Security
// Standard: the PodSecurity admission plugin refuses any pod that could run
// as root, escalate privileges, keep capabilities or lack a seccomp profile.
func checkRestricted(t *testing.T, k *kube, objs objects) {
	t.Helper()
	k.restrictedPods(t)
	for _, d := range typed[appsv1.Deployment](t, objs, "Deployment") {
		pod := podOf(d)
		require.NoError(t, k.client.Create(t.Context(), pod, client.DryRunAll), "Deployment %s's pods must pass the restricted Pod Security Standard", d.Name)
	}
}

// podOf is a pod of the Deployment's template in the restricted namespace,
// with the namespace's default ServiceAccount.
func podOf(d *appsv1.Deployment) *corev1.Pod {
	spec := d.Spec.Template.Spec.DeepCopy()
	spec.ServiceAccountName = ""
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: restrictedNamespace, Labels: d.Spec.Template.Labels},
		Spec:       *spec,
	}
}

// TestRestrictedIsEnforced makes sure the check above can fail: the API
// server refuses a pod that does not declare a non-root user.
func TestRestrictedIsEnforced(t *testing.T) {
	k := cluster.get(t)
	k.restrictedPods(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "root", Namespace: restrictedNamespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}
	err := k.client.Create(t.Context(), pod, client.DryRunAll)
	require.ErrorContains(t, err, `violates PodSecurity "restricted:latest"`)
}
