package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// openAPIDoc is the part of the OpenAPI document the tests read.
type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

// operations lists "METHOD path" for every operation of the document.
func (d openAPIDoc) operations() []string {
	var ops []string
	for path, item := range d.Paths {
		for method := range item {
			if method == "parameters" {
				continue
			}
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Token: "secret"})

	a := b.request(t, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, a.status, "the document is open")
	require.Equal(t, "application/json", a.header.Get("Content-Type"))
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(a.body, &doc))
	require.Equal(t, "3.1.0", doc.OpenAPI)

	var routes []string
	for _, rt := range b.server.routes() {
		routes = append(routes, rt.pattern())
	}
	slices.Sort(routes)
	require.Equal(t, routes, doc.operations(), "the document and the route table name the same routes")
}

// TestOpenAPIReferencesResolve checks that every $ref of the document
// points at a component that exists.
func TestOpenAPIReferencesResolve(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(openAPIDocument, &doc))
	var refs []string
	collectRefs(doc, &refs)
	require.NotEmpty(t, refs)
	components := doc["components"].(map[string]any)
	for _, ref := range refs {
		parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
		require.Len(t, parts, 2, ref)
		section, ok := components[parts[0]].(map[string]any)
		require.True(t, ok, ref)
		require.Contains(t, section, parts[1], ref)
	}
}

func collectRefs(node any, refs *[]string) {
	switch v := node.(type) {
	case map[string]any:
		for key, child := range v {
			if ref, ok := child.(string); ok && key == "$ref" {
				*refs = append(*refs, ref)
			}
			collectRefs(child, refs)
		}
	case []any:
		for _, child := range v {
			collectRefs(child, refs)
		}
	}
}
