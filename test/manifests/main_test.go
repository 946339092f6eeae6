// Package manifests tests what ships beside the binary: the Dockerfile, the
// Helm chart in charts/tasker-operator and the kustomize bases in config/.
//
// Every object the chart and the kustomizations render is applied with
// server-side apply in dry-run mode (DryRunAll) to a real API server (envtest,
// with the Tasker CRDs and prometheus-operator's ServiceMonitor CRD
// installed), so the API server's own validation — schemas, CEL rules,
// defaulting, admission — proves each one valid for the Kubernetes version
// the project targets. Other tests check what the API server cannot: that the
// copies (chart CRDs, RBAC rules) equal their sources, that Services, probes,
// budgets and policies select what they mean to, and that every flag the
// manifests pass to tasker exists.
//
// Tools: helm and kustomize come from $TASKER_HELM and $TASKER_KUSTOMIZE
// (`make test` sets them), else from ./bin (`make helm kustomize`); the
// control plane from $KUBEBUILDER_ASSETS or hack/envtest.sh; the tasker binary
// from $TASKER_BIN or a fresh build.
//
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test ./test/manifests/
package manifests

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := errors.Join(cluster.stop(), taskerBinary.cleanup()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
