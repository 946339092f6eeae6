package orchestration

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/template"
)

// tplPaymentDefinition is a three-step template that leaves most optional
// values unset, so that registration has to apply the defaults.
func tplPaymentDefinition() template.Definition {
	return template.Definition{
		NamespaceName: "payments",
		Name:          "charge",
		Version:       "1.0.0",
		Description:   "charge a card",
		Steps: []template.Step{
			{Name: "authorize", Handler: template.Handler{Callable: "payments.Authorize"}},
			{
				Name:           "capture",
				Handler:        template.Handler{Callable: "payments.Capture"},
				DependsOn:      []string{"authorize"},
				Retry:          &template.RetryPolicy{MaxAttempts: 5, Backoff: template.BackoffLinear, BackoffBaseMs: 200},
				TimeoutSeconds: 10,
			},
			{Name: "notify", Handler: template.Handler{Callable: "payments.Notify"}, DependsOn: []string{"authorize", "capture"}},
		},
	}
}

// tplStepRow is one row of tasker.template_steps.
type tplStepRow struct {
	Name           string
	Position       int32
	Callable       string
	Retryable      bool
	MaxAttempts    int32
	Backoff        string
	BackoffBaseMs  int32
	MaxBackoffMs   int32
	JitterPercent  int32
	TimeoutSeconds int32
}

func tplSteps(t *testing.T, pool *pgxpool.Pool, templateID int64) []tplStepRow {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
		SELECT name, position, handler_callable, retryable, max_attempts, backoff,
		       backoff_base_ms, max_backoff_ms, jitter_percent, timeout_seconds
		FROM tasker.template_steps WHERE template_id = $1 ORDER BY position`, templateID)
	require.NoError(t, err)
	steps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tplStepRow, error) {
		var s tplStepRow
		err := row.Scan(&s.Name, &s.Position, &s.Callable, &s.Retryable, &s.MaxAttempts, &s.Backoff,
			&s.BackoffBaseMs, &s.MaxBackoffMs, &s.JitterPercent, &s.TimeoutSeconds)
		return s, err
	})
	require.NoError(t, err)
	return steps
}

// tplEdges returns the template's edges as "from→to", sorted.
func tplEdges(t *testing.T, pool *pgxpool.Pool, templateID int64) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
		SELECT from_step || '→' || to_step FROM tasker.template_edges
		WHERE template_id = $1 ORDER BY from_step, to_step`, templateID)
	require.NoError(t, err)
	edges, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return edges
}

// tplCount runs a SELECT count(*) query.
func tplCount(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), sql, args...).Scan(&n))
	return n
}

func tplRelationExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var exists bool
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists))
	return exists
}

// tplWithVersion returns def registered under another version.
func tplWithVersion(def template.Definition, version string) template.Definition {
	def.Version = version
	return def
}

func TestTemplateStoreRegister(t *testing.T) {
	t.Parallel()

	t.Run("CreatesNamespaceQueueTemplateAndRowsWithDefaults", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t)
		def := tplPaymentDefinition()

		res, err := engine.Templates().Register(t.Context(), def, "cli")
		require.NoError(t, err)
		require.True(t, res.Created)
		require.True(t, res.Changed)
		require.Positive(t, res.TemplateID)
		require.Equal(t, def.Fingerprint(), res.Fingerprint)

		var queueName string
		require.NoError(t, b.pool.QueryRow(t.Context(),
			"SELECT queue_name FROM tasker.namespaces WHERE name = 'payments'").Scan(&queueName))
		require.Equal(t, "payments_queue", queueName)
		require.True(t, tplRelationExists(t, b.pool, "pgmq.q_payments_queue"), "queue table")
		require.True(t, tplRelationExists(t, b.pool, "pgmq.a_payments_queue"), "archive table")
		require.Equal(t, 1, tplCount(t, b.pool, "SELECT count(*) FROM pgmq.meta WHERE queue_name = 'payments_queue'"))

		row, err := engine.Templates().Get(t.Context(), "payments", "charge", "1.0.0")
		require.NoError(t, err)
		require.Equal(t, res.TemplateID, row.TemplateID)
		require.Equal(t, "cli", row.Owner)
		require.Equal(t, "strict", row.IdentityStrategy, "default identity strategy")
		require.Equal(t, "charge a card", row.Description)
		require.False(t, row.Retired)
		require.Nil(t, row.InputSchema, "no input schema is stored as NULL")
		var stored template.Definition
		require.NoError(t, json.Unmarshal(row.Definition, &stored))
		require.Equal(t, def.WithDefaults(), stored, "the stored definition is the defaulted one")

		require.Equal(t, []tplStepRow{
			{"authorize", 0, "payments.Authorize", true, 3, "exponential", 1000, 30000, 10, 60},
			{"capture", 1, "payments.Capture", true, 5, "linear", 200, 30000, 10, 10},
			{"notify", 2, "payments.Notify", true, 3, "exponential", 1000, 30000, 10, 60},
		}, tplSteps(t, b.pool, res.TemplateID))
		require.Equal(t, []string{"authorize→capture", "authorize→notify", "capture→notify"},
			tplEdges(t, b.pool, res.TemplateID))
	})

	t.Run("SameDefinitionAgainChangesNothing", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t)
		store := engine.Templates()
		first, err := store.Register(t.Context(), tplPaymentDefinition(), "cli")
		require.NoError(t, err)
		before, err := store.Get(t.Context(), "payments", "charge", "1.0.0")
		require.NoError(t, err)

		// The same definition with the defaults spelled out is the same.
		again, err := store.Register(t.Context(), tplPaymentDefinition().WithDefaults(), "cli")
		require.NoError(t, err)
		require.False(t, again.Created)
		require.False(t, again.Changed)
		require.Equal(t, first.TemplateID, again.TemplateID)
		require.Equal(t, first.Fingerprint, again.Fingerprint)

		after, err := store.Get(t.Context(), "payments", "charge", "1.0.0")
		require.NoError(t, err)
		require.Equal(t, before.UpdatedAt, after.UpdatedAt, "the row was not rewritten")
		require.Len(t, tplSteps(t, b.pool, first.TemplateID), 3)
		require.Equal(t, 1, tplCount(t, b.pool, "SELECT count(*) FROM tasker.templates"))
	})

	t.Run("ChangedDefinitionFromTheSameOwnerReplacesRows", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t)
		store := engine.Templates()
		first, err := store.Register(t.Context(), tplPaymentDefinition(), "k8s:default/a")
		require.NoError(t, err)

		changed := tplPaymentDefinition()
		changed.Steps[1].Handler.Callable = "payments.CaptureV2"
		changed.Steps = append(changed.Steps, template.Step{
			Name: "archive", Handler: template.Handler{Callable: "payments.Archive"}, DependsOn: []string{"notify"},
		})
		res, err := store.Register(t.Context(), changed, "k8s:default/a")
		require.NoError(t, err)
		require.False(t, res.Created)
		require.True(t, res.Changed)
		require.Equal(t, first.TemplateID, res.TemplateID)
		require.NotEqual(t, first.Fingerprint, res.Fingerprint)

		steps := tplSteps(t, b.pool, res.TemplateID)
		require.Len(t, steps, 4)
		require.Equal(t, "payments.CaptureV2", steps[1].Callable)
		require.Equal(t, tplStepRow{"archive", 3, "payments.Archive", true, 3, "exponential", 1000, 30000, 10, 60}, steps[3])
		require.Equal(t, []string{"authorize→capture", "authorize→notify", "capture→notify", "notify→archive"},
			tplEdges(t, b.pool, res.TemplateID))
		row, err := store.Get(t.Context(), "payments", "charge", "1.0.0")
		require.NoError(t, err)
		require.Equal(t, res.Fingerprint, row.Fingerprint)

		// Shrinking to one step removes the other rows and every edge.
		single := tplPaymentDefinition()
		single.Steps = single.Steps[:1]
		res, err = store.Register(t.Context(), single, "k8s:default/a")
		require.NoError(t, err)
		require.True(t, res.Changed)
		require.Equal(t, first.TemplateID, res.TemplateID)
		require.Equal(t, []string{"authorize"}, tplStepNames(tplSteps(t, b.pool, res.TemplateID)))
		require.Empty(t, tplEdges(t, b.pool, res.TemplateID))
	})

	t.Run("DifferentDefinitionFromAnotherOwnerIsAConflict", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t)
		store := engine.Templates()
		first, err := store.Register(t.Context(), tplPaymentDefinition(), "k8s:default/a")
		require.NoError(t, err)

		other := tplPaymentDefinition()
		other.Steps[0].Handler.Callable = "payments.AuthorizeElsewhere"
		_, err = store.Register(t.Context(), other, "k8s:default/b")
		var conflict *TemplateConflictError
		require.ErrorAs(t, err, &conflict)
		require.Equal(t, "k8s:default/a", conflict.Owner)
		require.Equal(t, "payments/charge@1.0.0", conflict.Key)
		require.Contains(t, err.Error(), `"k8s:default/a"`)
		require.True(t, IsConflict(err))

		row, err := store.Get(t.Context(), "payments", "charge", "1.0.0")
		require.NoError(t, err)
		require.Equal(t, first.Fingerprint, row.Fingerprint, "the first owner's definition stays")
		require.Equal(t, "k8s:default/a", row.Owner)
		require.Equal(t, "payments.Authorize", tplSteps(t, b.pool, first.TemplateID)[0].Callable)

		// The same definition from another owner is accepted as it is.
		same, err := store.Register(t.Context(), tplPaymentDefinition(), "k8s:default/b")
		require.NoError(t, err)
		require.False(t, same.Changed)
		require.Equal(t, first.TemplateID, same.TemplateID)
		row, err = store.Get(t.Context(), "payments", "charge", "1.0.0")
		require.NoError(t, err)
		require.Equal(t, "k8s:default/a", row.Owner, "ownership does not move")

		// Once the first owner retires it, the key is free for another owner.
		retired, err := store.Retire(t.Context(), "payments", "charge", "1.0.0")
		require.NoError(t, err)
		require.True(t, retired)
		res, err := store.Register(t.Context(), other, "k8s:default/b")
		require.NoError(t, err)
		require.True(t, res.Changed)
		row, err = store.Get(t.Context(), "payments", "charge", "1.0.0")
		require.NoError(t, err)
		require.Equal(t, "k8s:default/b", row.Owner)
		require.False(t, row.Retired)
	})

	t.Run("ConcurrentRegistrationOfOneNewDefinitionWritesOneRow", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t)
		store := engine.Templates()

		registerAll := func(def template.Definition) []RegisterResult {
			const n = 8
			results := make([]RegisterResult, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { results[i], errs[i] = store.Register(t.Context(), def, "cli") })
			}
			wg.Wait()
			created := 0
			for i := range n {
				require.NoError(t, errs[i], "goroutine %d", i)
				require.Equal(t, results[0].TemplateID, results[i].TemplateID)
				if results[i].Created {
					created++
				}
			}
			require.Equal(t, 1, created, "exactly one registration created the row")
			return results
		}

		// A new namespace: the namespace row, queue and template are new.
		res := registerAll(tplPaymentDefinition())
		require.Equal(t, 1, tplCount(t, b.pool, "SELECT count(*) FROM tasker.templates"))
		require.Equal(t, 1, tplCount(t, b.pool, "SELECT count(*) FROM tasker.namespaces"))
		require.Len(t, tplSteps(t, b.pool, res[0].TemplateID), 3)

		// A known namespace: only the template version is new.
		res = registerAll(tplWithVersion(tplPaymentDefinition(), "1.1.0"))
		require.Equal(t, 2, tplCount(t, b.pool, "SELECT count(*) FROM tasker.templates"))
		require.Len(t, tplSteps(t, b.pool, res[0].TemplateID), 3)
	})
}

func tplStepNames(steps []tplStepRow) []string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Name
	}
	return names
}

func TestTemplateStoreRejectsInvalidDefinitions(t *testing.T) {
	t.Parallel()
	step := func(name string, deps ...string) template.Step {
		return template.Step{Name: name, Handler: template.Handler{Callable: "ns." + name}, DependsOn: deps}
	}
	valid := func(steps ...template.Step) template.Definition {
		return template.Definition{NamespaceName: "ns", Name: "flow", Version: "1.0.0", Steps: steps}
	}
	cases := []struct {
		name    string
		def     template.Definition
		field   string
		message string
	}{
		{
			name:    "DependencyCycle",
			def:     valid(step("root"), step("a", "root", "b"), step("b", "c"), step("c", "a")),
			field:   "steps",
			message: "dependency cycle: a → b → c → a",
		},
		{
			name:    "SelfDependency",
			def:     valid(step("a", "a")),
			field:   "steps[0].dependsOn[0]",
			message: `step "a" cannot depend on itself`,
		},
		{
			name:    "UnknownDependency",
			def:     valid(step("a"), step("b", "a", "nope")),
			field:   "steps[1].dependsOn[1]",
			message: `unknown step "nope"`,
		},
		{
			name:    "DuplicateStepName",
			def:     valid(step("a"), step("a")),
			field:   "steps[1].name",
			message: `duplicate step name "a" (also steps[0])`,
		},
		{
			name:    "VersionNotSemver",
			def:     func() template.Definition { d := valid(step("a")); d.Version = "1.0"; return d }(),
			field:   "version",
			message: `"1.0" is not a semantic version`,
		},
		{
			name:    "VersionWithLeadingV",
			def:     func() template.Definition { d := valid(step("a")); d.Version = "v1.0.0"; return d }(),
			field:   "version",
			message: `"v1.0.0" is not a semantic version`,
		},
		{
			name: "InputSchemaNotAJSONSchema",
			def: func() template.Definition {
				d := valid(step("a"))
				d.InputSchema = json.RawMessage(`{"type": 12}`)
				return d
			}(),
			field:   "inputSchema",
			message: "is not a valid JSON Schema",
		},
		{
			name: "InputSchemaNotAnObject",
			def: func() template.Definition {
				d := valid(step("a"))
				d.InputSchema = json.RawMessage(`[1, 2]`)
				return d
			}(),
			field:   "inputSchema",
			message: "must be a JSON object, got array",
		},
		{
			name:    "NamespaceWithCapitalsAndDashes",
			def:     func() template.Definition { d := valid(step("a")); d.NamespaceName = "Bad-NS"; return d }(),
			field:   "namespaceName",
			message: `"Bad-NS" must contain only lowercase letters, digits and underscores`,
		},
		{
			name: "NamespaceTooLongForQueueIdentifiers",
			def: func() template.Definition {
				d := valid(step("a"))
				d.NamespaceName = "n123456789_123456789_123456789_1234567890"
				return d
			}(),
			field:   "namespaceName",
			message: "must be at most 40 bytes, got 41",
		},
		{
			name:    "NoSteps",
			def:     valid(),
			field:   "steps",
			message: "at least one step is required",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			engine, b := setup(t)
			_, err := engine.Templates().Register(t.Context(), tc.def, "cli")
			var invalid *template.ValidationError
			require.ErrorAs(t, err, &invalid)
			require.True(t, tplHasProblem(invalid, tc.field, tc.message), "want %s: %s, got %v", tc.field, tc.message, invalid.Problems)
			require.Zero(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.templates"), "no template row")
			require.Zero(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.namespaces"), "no namespace row")
			require.Zero(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.template_steps"), "no step rows")
		})
	}
}

// A definition whose raw JSON parts (input schema, handler initialization)
// jsonb cannot store is an invalid definition, to be reported as such (the
// operator's InvalidSpec), not as a database failure (DatabaseUnavailable,
// retried for ever).
func TestTemplateStoreRejectsDefinitionsThatJSONBCannotStore(t *testing.T) {
	t.Parallel()
	withSchema := func(schema string) template.Definition {
		def := tplPaymentDefinition()
		def.InputSchema = json.RawMessage(schema)
		return def
	}
	withInit := func(init string) template.Definition {
		def := tplPaymentDefinition()
		def.Steps[0].Handler.Initialization = json.RawMessage(init)
		return def
	}
	cases := []struct {
		name string
		def  template.Definition
	}{
		{"NULInSchema", withSchema(`{"type": "object", "description": "a\u0000b"}`)},
		{"LoneSurrogateInSchema", withSchema(`{"type": "object", "description": "\udc00"}`)},
		{"NumberBeyondNumericRangeInSchema", withSchema(`{"type": "integer", "maximum": 1e200000}`)},
		{"InvalidUTF8InSchema", withSchema("{\"type\": \"object\", \"description\": \"\xff\"}")},
		{"LoneSurrogateInInitialization", withInit(`{"label": "\ud800"}`)},
		{"NumberBeyondNumericRangeInInitialization", withInit(`{"limit": 1e200000}`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			engine, b := setup(t)
			_, err := engine.Templates().Register(t.Context(), tc.def, "cli")
			require.Error(t, err)
			var invalid *template.ValidationError
			require.ErrorAs(t, err, &invalid, "got %T: %v", err, err)
			require.Zero(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.templates"))
		})
	}
}

func tplHasProblem(err *template.ValidationError, field, message string) bool {
	for _, p := range err.Problems {
		if p.Field == field && strings.Contains(p.Message, message) {
			return true
		}
	}
	return false
}

func TestTemplateStoreRetire(t *testing.T) {
	t.Parallel()

	t.Run("RetiredVersionRefusesNewTasksUntilRegisteredAgain", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		store := engine.Templates()
		before, err := store.Get(t.Context(), def.NamespaceName, def.Name, def.Version)
		require.NoError(t, err)
		inFlight := createTask(t, engine, def, `{"even_number": 2}`)

		retired, err := store.Retire(t.Context(), def.NamespaceName, def.Name, def.Version)
		require.NoError(t, err)
		require.True(t, retired, "the first retire retires")
		retired, err = store.Retire(t.Context(), def.NamespaceName, def.Name, def.Version)
		require.NoError(t, err)
		require.False(t, retired, "the second finds nothing active")
		retired, err = store.Retire(t.Context(), def.NamespaceName, def.Name, "9.9.9")
		require.NoError(t, err)
		require.False(t, retired, "an unknown version is not retired")

		row, err := store.Get(t.Context(), def.NamespaceName, def.Name, def.Version)
		require.NoError(t, err, "history stays")
		require.True(t, row.Retired)
		require.NotNil(t, row.RetiredAt)

		_, err = engine.CreateTask(t.Context(), CreateTaskRequest{
			Namespace: def.NamespaceName, Name: def.Name, Version: def.Version, Context: json.RawMessage(`{"even_number": 4}`),
		})
		require.ErrorIs(t, err, ErrTemplateRetired)
		require.ErrorIs(t, err, ErrNotFound)
		_, err = engine.CreateTask(t.Context(), CreateTaskRequest{
			Namespace: def.NamespaceName, Name: def.Name, Context: json.RawMessage(`{"even_number": 4}`),
		})
		require.ErrorIs(t, err, ErrNotFound, "no active version left")

		// A task created before the retirement still runs to completion.
		drive(t, engine, b, finished(t, engine, inFlight.UUID))
		done, err := engine.GetTask(t.Context(), inFlight.UUID)
		require.NoError(t, err)
		require.Equal(t, TaskComplete, done.State)

		res, err := store.Register(t.Context(), def, "test")
		require.NoError(t, err)
		require.True(t, res.Changed, "coming back from retirement is a change")
		require.False(t, res.Created)
		require.Equal(t, before.TemplateID, res.TemplateID)
		row, err = store.Get(t.Context(), def.NamespaceName, def.Name, def.Version)
		require.NoError(t, err)
		require.False(t, row.Retired)
		require.Nil(t, row.RetiredAt)
		task := createTask(t, engine, def, `{"even_number": 4}`)
		require.Equal(t, def.Version, task.Version)
	})
}

func TestTemplateStoreResolve(t *testing.T) {
	t.Parallel()

	t.Run("PicksTheHighestActiveVersionBySemver", func(t *testing.T) {
		t.Parallel()
		base := linearWorkflow()
		versions := []string{"1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1"}
		defs := make([]template.Definition, len(versions))
		for i, v := range versions {
			defs[i] = tplWithVersion(base, v)
		}
		engine, _ := setup(t, defs...)
		store := engine.Templates()
		ns, name := base.NamespaceName, base.Name

		row, err := store.Resolve(t.Context(), ns, name, "")
		require.NoError(t, err)
		require.Equal(t, "2.0.0-rc.1", row.Version, "semver: 2.0.0-rc.1 > 1.10.0")
		task := createTask(t, engine, base, `{"even_number": 2}`)
		require.Equal(t, "2.0.0-rc.1", task.Version)

		_, err = store.Retire(t.Context(), ns, name, "2.0.0-rc.1")
		require.NoError(t, err)
		row, err = store.Resolve(t.Context(), ns, name, "")
		require.NoError(t, err)
		require.Equal(t, "1.10.0", row.Version, "numeric, not lexical, comparison: 1.10.0 > 1.2.0")
		task = createTask(t, engine, base, `{"even_number": 2}`)
		require.Equal(t, "1.10.0", task.Version)

		row, err = store.Resolve(t.Context(), ns, name, "1.2.0")
		require.NoError(t, err)
		require.Equal(t, "1.2.0", row.Version, "an explicit version is used as given")

		for _, v := range []string{"1.0.0", "1.10.0", "1.2.0"} {
			_, err = store.Retire(t.Context(), ns, name, v)
			require.NoError(t, err)
		}
		_, err = store.Resolve(t.Context(), ns, name, "")
		require.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("UnknownTemplateIsNotFound", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, _ := setup(t, def)
		store := engine.Templates()
		for _, key := range [][3]string{
			{"no_such_namespace", def.Name, ""},
			{def.NamespaceName, "no_such_name", ""},
			{def.NamespaceName, def.Name, "3.0.0"},
		} {
			_, err := store.Resolve(t.Context(), key[0], key[1], key[2])
			require.ErrorIs(t, err, ErrNotFound, "resolve %v", key)
			_, err = engine.CreateTask(t.Context(), CreateTaskRequest{Namespace: key[0], Name: key[1], Version: key[2]})
			require.ErrorIs(t, err, ErrNotFound, "create %v", key)
		}
	})
}

func TestTemplateStorePinsInFlightTasks(t *testing.T) {
	t.Parallel()
	oldDef := linearWorkflow()
	engine, b := setup(t, oldDef)
	first := createTask(t, engine, oldDef, `{"even_number": 6}`)
	require.Len(t, first.Steps, 4)

	newDef := linearWorkflow()
	extra := newDef.Steps[3]
	extra.Name, extra.Handler.Callable, extra.DependsOn = "linear_step_5", "linear_workflow.linear_step_5", []string{"linear_step_4"}
	newDef.Steps = append(newDef.Steps, extra)
	res, err := engine.Templates().Register(t.Context(), newDef, "test")
	require.NoError(t, err)
	require.True(t, res.Changed)

	// The first task keeps the four steps it started with and completes.
	drive(t, engine, b, finished(t, engine, first.UUID))
	first, err = engine.GetTask(t.Context(), first.UUID)
	require.NoError(t, err)
	require.Equal(t, TaskComplete, first.State)
	require.Len(t, first.Steps, 4)
	require.Equal(t, 4, first.StepCount)
	require.Nil(t, first.Step("linear_step_5"))
	require.Equal(t, "2821109907456", stepValue(t, first, "linear_step_4"))

	// A new task gets the fifth step.
	second := createTask(t, engine, newDef, `{"even_number": 2}`)
	require.Len(t, second.Steps, 5)
	require.Equal(t, 5, second.StepCount)
	b2 := *b
	b2.worker = newTestWorker(t, b.pool, "w2", []template.Definition{newDef})
	drive(t, engine, &b2, finished(t, engine, second.UUID))
	second, err = engine.GetTask(t.Context(), second.UUID)
	require.NoError(t, err)
	require.Equal(t, TaskComplete, second.State)
	require.Equal(t, 5, second.CompletedSteps())
	require.Equal(t, "4294967296", stepValue(t, second, "linear_step_5"), "2^(2^5)")
	require.Empty(t, b2.worker.orderViolations())
}

func TestTemplateStoreListAndGet(t *testing.T) {
	t.Parallel()
	linear, diamond := linearWorkflow(), diamondWorkflow()
	engine, _ := setup(t, linear, tplWithVersion(linear, "1.1.0"), diamond)
	store := engine.Templates()
	_, err := store.Retire(t.Context(), linear.NamespaceName, linear.Name, "1.0.0")
	require.NoError(t, err)

	keys := func(rows []dbsqlc.TaskerTemplate) []string {
		out := make([]string, len(rows))
		for i, r := range rows {
			out[i] = fmt.Sprintf("%s/%s@%s retired=%t", r.NamespaceName, r.Name, r.Version, r.Retired)
		}
		return out
	}

	t.Run("ActiveOnly", func(t *testing.T) {
		rows, err := store.List(t.Context(), "", false)
		require.NoError(t, err)
		require.Equal(t, []string{
			"diamond_workflow/diamond_pattern@1.0.0 retired=false",
			"linear_workflow/mathematical_sequence@1.1.0 retired=false",
		}, keys(rows))
	})
	t.Run("WithRetired", func(t *testing.T) {
		rows, err := store.List(t.Context(), "", true)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{
			"diamond_workflow/diamond_pattern@1.0.0 retired=false",
			"linear_workflow/mathematical_sequence@1.0.0 retired=true",
			"linear_workflow/mathematical_sequence@1.1.0 retired=false",
		}, keys(rows))
	})
	t.Run("OneNamespace", func(t *testing.T) {
		rows, err := store.List(t.Context(), "diamond_workflow", true)
		require.NoError(t, err)
		require.Equal(t, []string{"diamond_workflow/diamond_pattern@1.0.0 retired=false"}, keys(rows))
		rows, err = store.List(t.Context(), "no_such_namespace", true)
		require.NoError(t, err)
		require.Empty(t, rows)
	})
	t.Run("GetReturnsRetiredToo", func(t *testing.T) {
		row, err := store.Get(t.Context(), linear.NamespaceName, linear.Name, "1.0.0")
		require.NoError(t, err)
		require.True(t, row.Retired)
	})
	t.Run("GetOfUnknownTemplateIsNotFound", func(t *testing.T) {
		_, err := store.Get(t.Context(), linear.NamespaceName, linear.Name, "7.0.0")
		require.ErrorIs(t, err, ErrNotFound)
		require.Contains(t, err.Error(), "linear_workflow/mathematical_sequence@7.0.0")
		_, err = store.Get(t.Context(), "nope", "nope", "1.0.0")
		require.ErrorIs(t, err, ErrNotFound)
	})
}
