package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/taskerops/tasker/orchestration/template"
)

func TestGroupVersionIsTheEnginesAPIVersion(t *testing.T) {
	t.Parallel()
	require.Equal(t, template.APIVersion, GroupVersion.String())
}

func TestAddToSchemeRegistersEveryKind(t *testing.T) {
	t.Parallel()
	s := runtime.NewScheme()
	require.NoError(t, AddToScheme(s))
	for kind, obj := range map[string]runtime.Object{
		"TaskTemplate":     &TaskTemplate{},
		"TaskTemplateList": &TaskTemplateList{},
		"WorkerPool":       &WorkerPool{},
		"WorkerPoolList":   &WorkerPoolList{},
	} {
		gvks, _, err := s.ObjectKinds(obj)
		require.NoError(t, err, kind)
		require.Equal(t, GroupVersion.WithKind(kind), gvks[0])
	}
}
