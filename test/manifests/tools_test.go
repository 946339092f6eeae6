package manifests

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/taskerops/tasker/test/e2e/harness"
)

// Environment variables naming the tools; `make test` sets them to the
// pinned versions it installs into ./bin.
const (
	helmEnv      = "TASKER_HELM"
	kustomizeEnv = "TASKER_KUSTOMIZE"
)

// repoRoot returns the repository's root directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	require.NoError(t, err)
	return root
}

// repoPath returns the absolute path of a slash-separated path in the
// repository.
func repoPath(t *testing.T, rel string) string {
	t.Helper()
	return filepath.Join(repoRoot(t), filepath.FromSlash(rel))
}

// toolPath returns the tool named by the environment variable, else the one
// pinned version of it in ./bin (bin/<name>-<version>).
func toolPath(t *testing.T, env, name string) string {
	t.Helper()
	if path := os.Getenv(env); path != "" {
		_, err := os.Stat(path)
		require.NoError(t, err, "$%s", env)
		return path
	}
	matches, err := filepath.Glob(filepath.Join(repoRoot(t), "bin", name+"-v*"))
	require.NoError(t, err)
	if len(matches) != 1 {
		t.Fatalf("$%s is not set and bin/ holds %d versions of %s (%v): run `make %s` (make test sets $%s)",
			env, len(matches), name, matches, name, env)
	}
	return matches[0]
}

// tool runs one of the command-line tools.
type tool struct {
	path string
	// env is added to the test's environment.
	env []string
}

// helm returns helm with its configuration, cache and data directories in a
// temporary directory, so that nothing of the user's helm setup leaks in.
func helm(t *testing.T) tool {
	t.Helper()
	home := t.TempDir()
	return tool{path: toolPath(t, helmEnv, "helm"), env: []string{
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data"),
		"KUBECONFIG=" + filepath.Join(home, "no-kubeconfig"),
	}}
}

func kustomize(t *testing.T) tool {
	t.Helper()
	return tool{path: toolPath(t, kustomizeEnv, "kustomize")}
}

// run runs the tool in the repository's root and returns its standard
// output; a failure's error carries its standard error.
func (tl tool) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), tl.path, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), tl.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), &toolError{tool: filepath.Base(tl.path), args: args, err: err, output: stdout.String() + stderr.String()}
	}
	return stdout.String(), nil
}

// mustRun runs the tool and fails the test when it fails.
func (tl tool) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tl.run(t, args...)
	require.NoError(t, err, "%s", out)
	return out
}

// toolError is a failed tool run, with all the tool said.
type toolError struct {
	tool   string
	args   []string
	err    error
	output string
}

func (e *toolError) Error() string {
	return e.tool + " " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.output
}

func (e *toolError) Unwrap() error { return e.err }

// decodeObjects decodes a stream of YAML documents into objects, skipping
// empty documents.
func decodeObjects(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		var doc map[string]any
		err := decoder.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return objs
		}
		require.NoError(t, err, "decoding the rendered manifests")
		if len(doc) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: doc}
		require.NotEmpty(t, obj.GetKind(), "a document without a kind: %v", doc)
		objs = append(objs, obj)
	}
}

// readObjects decodes the objects of a file in the repository.
func readObjects(t *testing.T, rel string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, rel))
	require.NoError(t, err)
	return decodeObjects(t, string(data))
}
