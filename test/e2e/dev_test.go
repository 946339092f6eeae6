package e2e

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/test/e2e/harness"
)

// devTimeout bounds one run of `tasker dev`: PostgreSQL, the control plane,
// the templates becoming Ready and five tasks take seconds; the margin is
// for a loaded machine.
const devTimeout = 4 * time.Minute

// workDirLine finds where `tasker dev` keeps its files.
var workDirLine = regexp.MustCompile(`(?m)^work directory (\S+) `)

// TestDev runs `tasker dev` as `make demo` does and checks that it runs
// each example workflow to its WORKFLOWS.md result, exits 0 and leaves
// nothing behind.
func TestDev(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), devTimeout)
	defer cancel()
	bin, err := harness.Build(ctx, t.TempDir())
	require.NoError(t, err)
	root, err := harness.ModuleRoot()
	require.NoError(t, err)

	cmd := exec.CommandContext(ctx, bin, "dev", "--timeout", devTimeout.String())
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	text := string(out)
	require.NoError(t, err, "tasker dev failed:\n%s", text)

	for _, want := range []string{
		"TaskTemplate linear-workflow", "TaskTemplate order-fulfillment", "Ready",
		"WorkerPool example-workers: 2 worker(s) running `tasker worker --namespaces=diamond_workflow,linear_workflow,mixed_dag_workflow,order_fulfillment,tree_workflow --concurrency=16",
		"submitting one task per workflow",
	} {
		require.Contains(t, text, want)
	}
	for workflow, value := range workedValues {
		require.Regexp(t, `(?m)^`+workflow+`\s+\S+\s+complete\s+\d+/\d+\s+\S+\s+.*`+value, text, "the result row of %s", workflow)
	}
	require.Regexp(t, `(?m)^order_fulfillment\s+\S+\s+complete\s+4/4\s`, text)
	require.Regexp(t, `(?m)^linear_workflow\s+\[\d\d:\d\d\.\d\] 4/4 steps complete · complete`, text, "live progress lines")

	m := workDirLine.FindStringSubmatch(text)
	require.NotNil(t, m, "tasker dev names its work directory")
	require.NoDirExists(t, m[1], "tasker dev removes its work directory")
}

// TestDevKeep runs `tasker dev --keep`, uses what it prints to reach the
// REST API (with `tasker task list`) and the Kubernetes API (with a client
// built from its KUBECONFIG), then stops it with Ctrl-C (SIGINT).
func TestDevKeep(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), devTimeout)
	defer cancel()
	bin, err := harness.Build(ctx, t.TempDir())
	require.NoError(t, err)
	root, err := harness.ModuleRoot()
	require.NoError(t, err)
	dev, err := harness.StartDev(ctx, bin, root, devTimeout)
	require.NoError(t, err)
	defer func() { _ = dev.Stop() }()
	require.Contains(t, dev.Output, "Tasker is running; Ctrl-C stops it")

	list := exec.CommandContext(ctx, bin, "task", "list")
	list.Env = append(os.Environ(), "TASKER_SERVER="+dev.Env["TASKER_SERVER"], "TASKER_TOKEN_FILE="+dev.Env["TASKER_TOKEN_FILE"])
	listed, err := list.CombinedOutput()
	require.NoError(t, err, string(listed))
	for workflow := range workedValues {
		require.Contains(t, string(listed), workflow)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", dev.Env["KUBECONFIG"])
	require.NoError(t, err)
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(workflowsv1alpha1.AddToScheme(scheme))
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	require.NoError(t, err)
	var templates workflowsv1alpha1.TaskTemplateList
	require.NoError(t, k8s.List(ctx, &templates))
	require.Len(t, templates.Items, 5)
	var pools workflowsv1alpha1.WorkerPoolList
	require.NoError(t, k8s.List(ctx, &pools))
	require.Len(t, pools.Items, 1)

	require.NoError(t, dev.Stop(), "tasker dev --keep exits 0 on Ctrl-C")
	require.NotEmpty(t, dev.WorkDir)
	require.NoDirExists(t, dev.WorkDir, "Ctrl-C removes the work directory")
}
