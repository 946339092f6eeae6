package manifests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestChartCRDsAreTheGeneratedOnes checks that the chart ships exactly the
// CRDs controller-gen generates into config/crd/bases (`make manifests`
// copies them).
func TestChartCRDsAreTheGeneratedOnes(t *testing.T) {
	generated := yamlFiles(t, "config/crd/bases")
	require.NotEmpty(t, generated)
	require.Equal(t, generated, yamlFiles(t, chartDir+"/crds"), "run `make manifests`")
	for _, name := range generated {
		want, err := os.ReadFile(repoPath(t, "config/crd/bases/"+name))
		require.NoError(t, err)
		got, err := os.ReadFile(repoPath(t, chartDir+"/crds/"+name))
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%s differs from config/crd/bases: run `make manifests`", name)
	}
}

// yamlFiles lists the YAML files of a directory of the repository.
func yamlFiles(t *testing.T, rel string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(repoPath(t, rel), "*.yaml"))
	require.NoError(t, err)
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, filepath.Base(m))
	}
	return names
}

// TestRBACIsTheGeneratedOne checks that the chart and config/default grant
// the manager exactly the rules controller-gen generates from the
// controllers' markers into config/rbac/role.yaml, and the same leader
// election rules.
func TestRBACIsTheGeneratedOne(t *testing.T) {
	generated := typed[rbacv1.ClusterRole](t, readObjects(t, "config/rbac/role.yaml"), "ClusterRole")
	require.Len(t, generated, 1)
	leaderElection := typed[rbacv1.Role](t, readObjects(t, "config/rbac/leader_election_role.yaml"), "Role")
	require.Len(t, leaderElection, 1)

	chart := renderChart(t, helm(t), "", "tasker", "tasker-system")
	for _, got := range typed[rbacv1.ClusterRole](t, chart, "ClusterRole") {
		require.Equal(t, generated[0].Rules, got.Rules, "the chart's ClusterRole %s must have the rules of config/rbac/role.yaml (make manifests): copy them into %s/templates/rbac.yaml", got.Name, chartDir)
	}
	for _, got := range typed[rbacv1.Role](t, chart, "Role") {
		require.Equal(t, leaderElection[0].Rules, got.Rules, "the chart's Role %s must have the rules of config/rbac/leader_election_role.yaml", got.Name)
	}

	kustomized := objects(decodeObjects(t, kustomize(t).mustRun(t, "build", "config/default")))
	for _, got := range typed[rbacv1.ClusterRole](t, kustomized, "ClusterRole") {
		require.Equal(t, generated[0].Rules, got.Rules)
	}
}

// TestImagesAgree checks that the chart and config/manager deploy the same
// image by default: the chart's appVersion is the kustomization's tag.
func TestImagesAgree(t *testing.T) {
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	readYAML(t, chartDir+"/Chart.yaml", &chart)
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	readYAML(t, chartDir+"/values.yaml", &values)
	var kustomization struct {
		Images []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	readYAML(t, "config/manager/kustomization.yaml", &kustomization)

	require.Len(t, kustomization.Images, 1)
	require.Empty(t, values.Image.Tag, "the chart's image tag defaults to its appVersion")
	require.Equal(t, values.Image.Repository, kustomization.Images[0].NewName)
	require.Equal(t, chart.AppVersion, kustomization.Images[0].NewTag)
}

// readYAML decodes a YAML file of the repository into v.
func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, rel))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, v), rel)
}
