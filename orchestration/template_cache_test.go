package orchestration

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbsqlc"
)

func TestTemplateCache(t *testing.T) {
	t.Parallel()
	var c templateCache
	ref := templateRef{namespace: "ns", name: "n"}
	_, ok := c.get(ref)
	require.False(t, ok, "the zero value is empty")

	c.put(ref, resolvedTemplate{tmpl: dbsqlc.TaskerTemplate{TemplateID: 7}, activeVersions: "3,7"})
	got, ok := c.get(ref)
	require.True(t, ok)
	require.Equal(t, int64(7), got.tmpl.TemplateID)
	require.Equal(t, "3,7", got.activeVersions)
	_, ok = c.get(templateRef{namespace: "ns", name: "n", version: "1.0.0"})
	require.False(t, ok, "a named version is another entry")

	c.forget(ref)
	_, ok = c.get(ref)
	require.False(t, ok)

	// Past maxCachedTemplates entries the cache starts empty again.
	for i := range maxCachedTemplates {
		c.put(templateRef{namespace: "ns", name: fmt.Sprint(i)}, resolvedTemplate{})
	}
	_, ok = c.get(templateRef{namespace: "ns", name: "0"})
	require.True(t, ok)
	c.put(ref, resolvedTemplate{})
	_, ok = c.get(templateRef{namespace: "ns", name: "0"})
	require.False(t, ok, "the full cache was emptied")
	_, ok = c.get(ref)
	require.True(t, ok, "the new entry is kept")
	require.Len(t, c.entries, 1)
}

func TestActiveVersionList(t *testing.T) {
	t.Parallel()
	rows := []dbsqlc.TaskerTemplate{{TemplateID: 12}, {TemplateID: 3}, {TemplateID: 7}}
	require.Equal(t, "3,7,12", activeVersionList(rows), "ascending ids, as string_agg(... ORDER BY template_id)")
	require.Empty(t, activeVersionList(nil))
}
