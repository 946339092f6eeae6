package manifests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/taskerops/tasker/internal/kubeenv"
)

// prometheusOperator is the Go module whose source holds the ServiceMonitor
// CRD the chart's ServiceMonitors are checked against, at a pinned version.
// It is downloaded into the module cache, never added to go.mod.
const (
	prometheusOperator        = "github.com/prometheus-operator/prometheus-operator"
	prometheusOperatorVersion = "v0.85.0"
	serviceMonitorCRD         = "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
)

// fieldOwner is the field manager of the dry-run applies.
const fieldOwner = client.FieldOwner("tasker-manifests-test")

// kube is the API server the tests share.
type kube struct {
	// config is an admin (system:masters) client configuration.
	config *rest.Config
	// client talks to the API server; its REST mapper discovers kinds lazily.
	client client.Client
	// version is the API server's version, e.g. v1.37.2.
	version string
	// controlPlane is the running kube-apiserver and etcd.
	controlPlane *kubeenv.ControlPlane
}

// sharedCluster starts the API server for the first test that needs it.
type sharedCluster struct {
	once sync.Once
	kube *kube
	err  error
}

// cluster is the package's API server; TestMain stops it.
var cluster sharedCluster

// get returns the running API server, starting it on first use.
func (s *sharedCluster) get(t *testing.T) *kube {
	t.Helper()
	s.once.Do(func() {
		// The control plane outlives the test that starts it.
		s.kube, s.err = startKube(context.WithoutCancel(t.Context()))
	})
	require.NoError(t, s.err, "starting the API server")
	return s.kube
}

// stop stops the API server when one was started.
func (s *sharedCluster) stop() error {
	if s.kube == nil {
		return nil
	}
	return s.kube.controlPlane.Stop()
}

// startKube starts kube-apiserver and etcd with the Tasker CRDs and the
// ServiceMonitor CRD installed.
func startKube(ctx context.Context) (*kube, error) {
	crds, err := kubeenv.RepoPath(filepath.Join("config", "crd", "bases"))
	if err != nil {
		return nil, err
	}
	smCRD, err := serviceMonitorCRDPath(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := kubeenv.Start(ctx, kubeenv.Options{CRDDirectories: []string{crds}, Output: os.Stderr})
	if err != nil {
		return nil, err
	}
	k, err := newKube(cp, smCRD)
	if err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return k, nil
}

func newKube(cp *kubeenv.ControlPlane, smCRD string) (*kube, error) {
	if _, err := envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{Paths: []string{smCRD}, ErrorIfPathMissing: true}); err != nil {
		return nil, fmt.Errorf("installing the ServiceMonitor CRD from %s: %w", smCRD, err)
	}
	c, err := client.New(cp.Config, client.Options{})
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cp.Config)
	if err != nil {
		return nil, err
	}
	info, err := dc.ServerVersion()
	if err != nil {
		return nil, err
	}
	return &kube{config: cp.Config, client: c, version: info.GitVersion, controlPlane: cp}, nil
}

// serviceMonitorCRDPath downloads prometheus-operator's module (or finds it
// in the module cache) and returns the path of its ServiceMonitor CRD. It
// runs outside this module, so go.mod and go.sum stay as they are.
func serviceMonitorCRDPath(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", prometheusOperator+"@"+prometheusOperatorVersion)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GO111MODULE=on")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s (for its ServiceMonitor CRD): %w: %s", prometheusOperator, prometheusOperatorVersion, err, stderrOf(err))
	}
	var module struct {
		Dir   string `json:"Dir"`
		Error string `json:"Error"`
	}
	if err := json.Unmarshal(out, &module); err != nil {
		return "", fmt.Errorf("reading go mod download's answer: %w", err)
	}
	if module.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", prometheusOperator, prometheusOperatorVersion, module.Error)
	}
	return filepath.Join(module.Dir, filepath.FromSlash(serviceMonitorCRD)), nil
}

// stderrOf returns what a failed command wrote to its standard error.
func stderrOf(err error) string {
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
		return strings.TrimSpace(string(exitErr.Stderr))
	}
	return ""
}

// createNamespace creates the namespace for real (dry-run objects need it to
// exist); it may exist already.
func (k *kube) createNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k.client.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err, "creating namespace %s", name)
	}
}

// dryRunApply applies every object with server-side apply in dry-run mode,
// after creating for real each namespace the objects live in (or are).
// Namespaced objects without a namespace go to namespace, as kubectl -n
// would send them. It fails the test with every refusal, each naming its
// object.
func (k *kube) dryRunApply(t *testing.T, objs []*unstructured.Unstructured, namespace string) {
	t.Helper()
	require.NotEmpty(t, objs, "nothing to apply")
	for _, obj := range objs {
		namespaced, err := k.namespaced(obj)
		require.NoError(t, err, "%s: the API server does not know its kind", describe(obj))
		switch {
		case obj.GetKind() == "Namespace" && obj.GetAPIVersion() == "v1":
			k.createNamespace(t, obj.GetName())
		case namespaced && obj.GetNamespace() == "":
			obj.SetNamespace(namespace)
		}
		if namespaced {
			k.createNamespace(t, obj.GetNamespace())
		}
	}
	var refusals []string
	for _, obj := range objs {
		err := k.client.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(obj), client.DryRunAll, fieldOwner, client.ForceOwnership)
		if err != nil {
			refusals = append(refusals, fmt.Sprintf("%s: %v", describe(obj), err))
		}
	}
	require.Empty(t, refusals, "the API server refused objects")
}

// namespaced reports whether the object's kind is namespaced.
func (k *kube) namespaced(obj *unstructured.Unstructured) (bool, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := k.client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false, err
	}
	return mapping.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// describe names an object in messages: Kind namespace/name.
func describe(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetKind() + " " + obj.GetName()
	}
	return obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
}

// writeKubeconfig writes an admin kubeconfig for programs run by the tests
// (helm) and returns its path.
func (k *kube) writeKubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, k.controlPlane.WriteKubeconfig(path, "manifests-test-admin", "system:masters"))
	return path
}
