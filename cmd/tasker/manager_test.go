package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/internal/kubeenv"
	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
)

// TestManagerAgainstAPIServer runs `tasker manager` as a deployment would:
// against a real API server, as a user with only the RBAC of config/rbac
// (the generated ClusterRole and the leader-election Role), with KUBECONFIG
// and flags. It checks leader election, the probes and metrics, that a
// TaskTemplate reaches the database, and a clean stop.
func TestManagerAgainstAPIServer(t *testing.T) { //nolint:paralleltest // sets KUBECONFIG for ctrl.GetConfig
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	db := pgtest.NewEmptyDatabase(t)
	cp, err := kubeenv.Start(ctx, kubeenv.Options{CRDDirectories: []string{filepath.Join("..", "..", "config", "crd", "bases")}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cp.Stop()) })

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(workflowsv1alpha1.AddToScheme(scheme))
	admin, err := client.New(cp.Config, client.Options{Scheme: scheme})
	require.NoError(t, err)

	const user, namespace = "tasker-manager", "default"
	grantRBAC(ctx, t, admin, user, namespace)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, cp.WriteKubeconfig(kubeconfig, user))
	t.Setenv("KUBECONFIG", kubeconfig)

	health, err := freeAddress(ctx, "127.0.0.1:0")
	require.NoError(t, err)
	metrics, err := freeAddress(ctx, "127.0.0.1:0")
	require.NoError(t, err)
	managerCtx, stopManager := context.WithCancel(ctx)
	defer stopManager()
	done := make(chan error, 1)
	var logs lockedBuffer
	go func() {
		cmd := newRootCommand()
		cmd.SetArgs([]string{
			"manager", "--database-url", db.URL, "--worker-image", "example.com/tasker:test",
			"--leader-election-namespace", namespace, "--health-listen", health, "--metrics-listen", metrics,
		})
		cmd.SetOut(io.Discard)
		cmd.SetErr(&logs)
		done <- cmd.ExecuteContext(managerCtx)
	}()

	require.NoError(t, waitHTTPOK(ctx, "http://"+health+"/readyz"), "readyz (database reachable)")

	lease := &coordinationv1.Lease{}
	require.NoError(t, waitFor(ctx, func() error {
		return admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "tasker-operator.workflows.tasker.dev"}, lease)
	}), "the leader-election lease")
	require.NotEmpty(t, lease.Spec.HolderIdentity)

	template := readSample[workflowsv1alpha1.TaskTemplate](t, "workflows_v1alpha1_tasktemplate_linear.yaml")
	template.Namespace = namespace
	require.NoError(t, admin.Create(ctx, template))
	require.NoError(t, waitFor(ctx, func() error {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(template), template); err != nil {
			return err
		}
		if !apimeta.IsStatusConditionTrue(template.Status.Conditions, "Ready") {
			return errNotYet
		}
		return nil
	}), "the TaskTemplate becomes Ready")
	stored, err := orchestration.NewTemplateStore(db.Pool).Get(ctx, template.Spec.NamespaceName, template.Spec.Name, template.Spec.Version)
	require.NoError(t, err, "the manager migrated the database and registered the template")
	require.Equal(t, template.Spec.Name, stored.Name)

	status, body := httpGet(t, "http://"+metrics, "/metrics")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `controller_runtime_reconcile_total{controller="tasktemplate",result="success"}`)

	stopManager()
	select {
	case err := <-done:
		require.NoError(t, err, "the manager stops cleanly; logs:\n%s", logs.String())
	case <-ctx.Done():
		t.Fatal("the manager did not stop")
	}
}

// errNotYet is what a waitFor check returns while the condition is unmet.
var errNotYet = notYetError("not yet")

type notYetError string

func (e notYetError) Error() string { return string(e) }

// grantRBAC binds config/rbac's ClusterRole and leader-election Role to user.
func grantRBAC(ctx context.Context, t *testing.T, c client.Client, user, namespace string) {
	t.Helper()
	subject := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}
	clusterRole := readManifest[rbacv1.ClusterRole](t, filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	require.NoError(t, c.Create(ctx, clusterRole))
	require.NoError(t, c.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: clusterRole.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole.Name},
		Subjects:   subject,
	}))
	role := readManifest[rbacv1.Role](t, filepath.Join("..", "..", "config", "rbac", "leader_election_role.yaml"))
	role.Namespace = namespace
	require.NoError(t, c.Create(ctx, role))
	require.NoError(t, c.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   subject,
	}))
}

// readSample reads a manifest of config/samples.
func readSample[T any](t *testing.T, name string) *T {
	t.Helper()
	return readManifest[T](t, filepath.Join("..", "..", "config", "samples", name))
}

// readManifest decodes a one-object YAML file, strictly.
func readManifest[T any](t *testing.T, path string) *T {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	obj := new(T)
	require.NoError(t, yaml.UnmarshalStrict(data, obj), path)
	return obj
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
