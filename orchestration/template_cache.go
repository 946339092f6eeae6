package orchestration

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/taskerops/tasker/internal/dbsqlc"
)

// templateRef is a template as a task creation request names it: without a
// version, the newest active one.
type templateRef struct {
	namespace, name, version string
}

// resolvedTemplate is the template row a templateRef resolved to.
type resolvedTemplate struct {
	tmpl dbsqlc.TaskerTemplate
	// activeVersions, for a reference without a version, lists the ids of
	// the template's active versions that tmpl was chosen among
	// (activeVersionList); empty for a reference with a version.
	activeVersions string
}

// activeVersionList returns the ids of rows, ascending, separated by
// commas: the form the creating statements compute from the table to check
// that the active versions of a template are still those a creation chose
// among.
func activeVersionList(rows []dbsqlc.TaskerTemplate) string {
	ids := make([]int64, len(rows))
	for i, row := range rows {
		ids[i] = row.TemplateID
	}
	slices.Sort(ids)
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// maxCachedTemplates bounds templateCache: past it, the cache starts
// empty again. Each entry is one template version a creation named.
const maxCachedTemplates = 1024

// templateCache keeps, for task creation, what each templateRef resolved
// to, which saves a query per task. An entry can go out of date whenever a
// template is registered or retired, by this process or another, so it is
// never trusted on its own:
//
//   - the creating statement checks the template as it always does (its
//     fingerprint, which covers the whole definition, and its retired
//     flag, locked), and, for a reference without a version, that the
//     template's active versions are still those the entry was chosen
//     among, so that a version added, retired or restored since is seen.
//     A failed check writes nothing and reports the template changed, and
//     the creation forgets the entry and starts over from the database;
//   - a request that the cached template rejects (its context, its
//     identity) is checked again against the template read afresh before
//     the error is returned.
//
// The zero value is ready to use.
type templateCache struct {
	mu      sync.Mutex
	entries map[templateRef]resolvedTemplate
}

// get returns ref's entry.
func (c *templateCache) get(ref templateRef) (resolvedTemplate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.entries[ref]
	return r, ok
}

// put stores r as ref's entry.
func (c *templateCache) put(ref templateRef, r resolvedTemplate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedTemplates {
		c.entries = make(map[templateRef]resolvedTemplate)
	}
	c.entries[ref] = r
}

// forget drops ref's entry.
func (c *templateCache) forget(ref templateRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, ref)
}

// resolveTemplate returns what ref resolves to, from the cache when it
// holds ref (cached is then true) and from the database otherwise, storing
// it in the cache. Errors (an unknown or retired template) are not cached.
func (e *Engine) resolveTemplate(ctx context.Context, ref templateRef) (r resolvedTemplate, cached bool, err error) {
	if r, ok := e.resolved.get(ref); ok {
		return r, true, nil
	}
	r, err = e.templates.resolve(ctx, ref)
	if err != nil {
		return resolvedTemplate{}, false, err
	}
	e.resolved.put(ref, r)
	return r, false, nil
}
