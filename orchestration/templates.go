package orchestration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/semver"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/internal/dbtx"
	"github.com/taskerops/tasker/internal/jsonb"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
	"github.com/taskerops/tasker/orchestration/template"
)

// TemplateStore registers, retires and looks up workflow templates. It is
// the one registration path: the operator's TaskTemplate controller and
// `tasker template apply` both call Register.
type TemplateStore struct {
	pool    *pgxpool.Pool
	queries *dbsqlc.Queries
	queue   *queue.Client

	mu      sync.Mutex
	schemas map[int64]cachedSchema
}

// cachedSchema is a compiled input schema of one template row, valid while
// the row keeps the same fingerprint.
type cachedSchema struct {
	fingerprint string
	schema      *template.Schema
}

// NewTemplateStore returns a TemplateStore over pool.
func NewTemplateStore(pool *pgxpool.Pool) *TemplateStore {
	return &TemplateStore{pool: pool, queries: dbsqlc.New(), queue: queue.New(), schemas: map[int64]cachedSchema{}}
}

// RegisterResult says what Register did.
type RegisterResult struct {
	TemplateID  int64
	Fingerprint string
	// Created is true when namespace/name/version was new.
	Created bool
	// Changed is true when the stored definition changed (including a
	// retired template coming back).
	Changed bool
}

// Register validates def and upserts it by (namespace, name, version),
// creating the namespace and its queue on first use. owner names who
// registers it; registering a key that another owner holds with a
// different definition fails with *TemplateConflictError. Tasks already
// created keep the definition they started with. An invalid definition
// fails with *template.ValidationError.
func (s *TemplateStore) Register(ctx context.Context, def template.Definition, owner string) (RegisterResult, error) {
	def = def.WithDefaults()
	if err := def.Validate(); err != nil {
		return RegisterResult{}, err
	}
	definition, err := json.Marshal(def)
	if err != nil {
		return RegisterResult{}, fmt.Errorf("encoding definition: %w", err)
	}
	if err := jsonb.Check(definition); err != nil {
		var problem *jsonb.Error
		errors.As(err, &problem)
		field := strings.TrimPrefix(strings.TrimPrefix(problem.Path, "$"), ".")
		return RegisterResult{}, &template.ValidationError{Problems: []template.Problem{{Field: field, Message: problem.Message}}}
	}
	var result RegisterResult
	register := func() error {
		return dbtx.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
			result, err = s.register(ctx, tx, def, definition, owner)
			return err
		})
	}
	err = register()
	if dbtx.IsUniqueViolation(err, "") {
		// Another process inserted the same key concurrently; the second
		// try finds its row and compares fingerprints.
		err = register()
	}
	return result, err
}

func (s *TemplateStore) register(ctx context.Context, tx pgx.Tx, def template.Definition, definition []byte, owner string) (RegisterResult, error) {
	result := RegisterResult{Fingerprint: def.Fingerprint()}
	// Lock the template row first: a transaction creating a task of it holds
	// it FOR SHARE and then sends on the namespace queue, so taking any lock
	// on the queue before this one could deadlock with it.
	existing, err := s.queries.GetTemplateForUpdate(ctx, tx, dbsqlc.GetTemplateForUpdateParams{
		NamespaceName: def.NamespaceName, Name: def.Name, Version: def.Version,
	})
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return result, fmt.Errorf("reading template: %w", err)
	}
	if err == nil {
		return s.update(ctx, tx, existing, def, definition, owner, result)
	}
	if err := s.ensureNamespace(ctx, tx, def.NamespaceName); err != nil {
		return result, err
	}
	result.Created, result.Changed = true, true
	result.TemplateID, err = s.queries.InsertTemplate(ctx, tx, insertTemplateParams(def, definition, result.Fingerprint, owner))
	if err != nil {
		return result, fmt.Errorf("inserting template: %w", err)
	}
	return result, s.replaceSteps(ctx, tx, result.TemplateID, def)
}

// update replaces the stored definition of an existing template row, unless
// it is unchanged or another owner holds it with a different definition.
func (s *TemplateStore) update(ctx context.Context, tx pgx.Tx, existing dbsqlc.TaskerTemplate, def template.Definition, definition []byte, owner string, result RegisterResult) (RegisterResult, error) {
	result.TemplateID = existing.TemplateID
	if existing.Fingerprint == result.Fingerprint && !existing.Retired {
		return result, nil
	}
	if !existing.Retired && existing.Owner != "" && existing.Owner != owner {
		return result, &TemplateConflictError{Key: templateKey(def.NamespaceName, def.Name, def.Version), Owner: existing.Owner}
	}
	result.Changed = true
	if err := s.queries.UpdateTemplate(ctx, tx, updateTemplateParams(existing.TemplateID, def, definition, result.Fingerprint, owner)); err != nil {
		return result, fmt.Errorf("updating template: %w", err)
	}
	return result, s.replaceSteps(ctx, tx, result.TemplateID, def)
}

// ensureNamespace records a namespace and creates its queue the first time
// it is seen. (Creating an existing queue again would lock its table.)
func (s *TemplateStore) ensureNamespace(ctx context.Context, tx pgx.Tx, namespace string) error {
	queueName := dispatch.StepQueue(namespace)
	created, err := s.queries.EnsureNamespace(ctx, tx, dbsqlc.EnsureNamespaceParams{Name: namespace, QueueName: queueName})
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	if created == 0 {
		return nil
	}
	if err := s.queue.Create(ctx, tx, queueName); err != nil {
		return fmt.Errorf("creating queue %s: %w", queueName, err)
	}
	return nil
}

// replaceSteps rewrites the step and edge rows of a template.
func (s *TemplateStore) replaceSteps(ctx context.Context, tx pgx.Tx, templateID int64, def template.Definition) error {
	if err := s.queries.DeleteTemplateEdges(ctx, tx, templateID); err != nil {
		return fmt.Errorf("deleting template edges: %w", err)
	}
	if err := s.queries.DeleteTemplateSteps(ctx, tx, templateID); err != nil {
		return fmt.Errorf("deleting template steps: %w", err)
	}
	if err := s.queries.InsertTemplateSteps(ctx, tx, templateStepsParams(templateID, def)); err != nil {
		return fmt.Errorf("inserting template steps: %w", err)
	}
	if err := s.queries.InsertTemplateEdges(ctx, tx, templateEdgesParams(templateID, def)); err != nil {
		return fmt.Errorf("inserting template edges: %w", err)
	}
	return nil
}

// Retire stops new tasks from using namespace/name/version. Existing tasks
// and the history stay. It reports whether the template was active.
func (s *TemplateStore) Retire(ctx context.Context, namespace, name, version string) (bool, error) {
	n, err := s.queries.RetireTemplate(ctx, s.pool, dbsqlc.RetireTemplateParams{NamespaceName: namespace, Name: name, Version: version})
	if err != nil {
		return false, fmt.Errorf("retiring template %s: %w", templateKey(namespace, name, version), err)
	}
	return n > 0, nil
}

// Get returns one registered template, retired or not.
func (s *TemplateStore) Get(ctx context.Context, namespace, name, version string) (dbsqlc.TaskerTemplate, error) {
	row, err := s.queries.GetTemplate(ctx, s.pool, dbsqlc.GetTemplateParams{NamespaceName: namespace, Name: name, Version: version})
	return row, dbtx.Interpret(err, "template "+templateKey(namespace, name, version))
}

// List returns registered templates, optionally of one namespace.
func (s *TemplateStore) List(ctx context.Context, namespace string, includeRetired bool) ([]dbsqlc.TaskerTemplate, error) {
	var ns *string
	if namespace != "" {
		ns = &namespace
	}
	rows, err := s.queries.ListTemplates(ctx, s.pool, dbsqlc.ListTemplatesParams{NamespaceName: ns, IncludeRetired: includeRetired})
	if err != nil {
		return nil, fmt.Errorf("listing templates: %w", err)
	}
	return rows, nil
}

// Resolve finds the template a new task should use: the given version, or
// the highest active version by semver when version is empty, in one
// statement. The row it returns has no Definition: task creation copies
// the template's steps and edges from their own tables, and reading the
// whole definition (and having pgx check it as JSON) for every task cost
// more than the rest of the row.
func (s *TemplateStore) Resolve(ctx context.Context, namespace, name, version string) (dbsqlc.TaskerTemplate, error) {
	r, err := s.resolve(ctx, templateRef{namespace: namespace, name: name, version: version})
	return r.tmpl, err
}

// resolve is Resolve, which also returns, for a request without a version,
// the active versions it chose among (resolvedTemplate.activeVersions).
func (s *TemplateStore) resolve(ctx context.Context, ref templateRef) (resolvedTemplate, error) {
	namespace, name, version := ref.namespace, ref.name, ref.version
	rows, err := s.pool.Query(ctx, resolveSQL, namespace, name, version)
	if err != nil {
		return resolvedTemplate{}, fmt.Errorf("resolving template %s: %w", templateKey(namespace, name, version), err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowToStructByPos[dbsqlc.TaskerTemplate])
	if err != nil {
		return resolvedTemplate{}, fmt.Errorf("resolving template %s: %w", templateKey(namespace, name, version), err)
	}
	if version != "" {
		if len(versions) == 0 {
			return resolvedTemplate{}, fmt.Errorf("template %s: %w", templateKey(namespace, name, version), ErrNotFound)
		}
		if versions[0].Retired {
			return resolvedTemplate{tmpl: versions[0]}, fmt.Errorf("template %s: %w", templateKey(namespace, name, version), ErrTemplateRetired)
		}
		return resolvedTemplate{tmpl: versions[0]}, nil
	}
	if len(versions) == 0 {
		return resolvedTemplate{}, fmt.Errorf("template %s/%s (any version): %w", namespace, name, ErrNotFound)
	}
	best := versions[0]
	for _, v := range versions[1:] {
		if semver.Compare("v"+v.Version, "v"+best.Version) > 0 {
			best = v
		}
	}
	return resolvedTemplate{tmpl: best, activeVersions: activeVersionList(versions)}, nil
}

// resolveSQL reads the template rows Resolve chooses from, in the column
// order of dbsqlc.TaskerTemplate with definition NULL: with a version ($3),
// that version, retired or not; without, every active version. Resolve
// picks the highest by semver in Go (SQL does not order by semver): a
// template has few versions.
const resolveSQL = `-- name: ResolveTemplate (orchestration/templates.go)
SELECT template_id, namespace_name, name, version, description, identity_strategy, input_schema,
       NULL::jsonb AS definition, fingerprint, owner, retired, retired_at, created_at, updated_at
FROM tasker.templates
WHERE namespace_name = $1::text AND name = $2::text
  AND CASE WHEN $3::text = '' THEN NOT retired ELSE version = $3::text END`

// inputSchema returns the compiled input schema of a template row, from the
// cache when the row has not changed.
func (s *TemplateStore) inputSchema(row dbsqlc.TaskerTemplate) (*template.Schema, error) {
	s.mu.Lock()
	cached, ok := s.schemas[row.TemplateID]
	s.mu.Unlock()
	if ok && cached.fingerprint == row.Fingerprint {
		return cached.schema, nil
	}
	schema, err := template.CompileSchema(row.InputSchema)
	if err != nil {
		return nil, fmt.Errorf("input schema of %s: %w", templateKey(row.NamespaceName, row.Name, row.Version), err)
	}
	s.mu.Lock()
	s.schemas[row.TemplateID] = cachedSchema{fingerprint: row.Fingerprint, schema: schema}
	s.mu.Unlock()
	return schema, nil
}

func templateKey(namespace, name, version string) string {
	return namespace + "/" + name + "@" + version
}
