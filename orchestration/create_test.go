package orchestration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/dbtx"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/template"
)

// ctRequest is a request for a task of def with the given context.
func ctRequest(def template.Definition, context string) CreateTaskRequest {
	return CreateTaskRequest{Namespace: def.NamespaceName, Name: def.Name, Context: json.RawMessage(context)}
}

// ctRequireNothingWritten checks that no task, step or step message exists.
func ctRequireNothingWritten(t *testing.T, b *bundle, def template.Definition) {
	t.Helper()
	require.Zero(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks"), "no task row")
	require.Zero(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.workflow_steps"), "no step rows")
	require.Zero(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.task_transitions"), "no transitions")
	require.Zero(t, ctQueueLength(t, b, def), "no step message")
}

func ctQueueLength(t *testing.T, b *bundle, def template.Definition) int64 {
	t.Helper()
	m, err := b.queue.Metrics(t.Context(), b.pool, dispatch.StepQueue(def.NamespaceName))
	require.NoError(t, err)
	return m.Length
}

func TestCreateTaskRejectsInvalidContexts(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	engine, b := setup(t, def)

	cases := []struct {
		name    string
		context string
		want    []template.Violation
	}{
		{"OddNumber", `{"even_number": 7}`, []template.Violation{{Path: "$.even_number", Message: "must be multiple of 2"}}},
		{"BelowMinimumAndOdd", `{"even_number": 1}`, []template.Violation{
			{Path: "$.even_number", Message: "must be >= 2"},
			{Path: "$.even_number", Message: "must be multiple of 2"},
		}},
		{"Missing", `{"odd_number": 3}`, []template.Violation{{Path: "$", Message: `missing required property "even_number"`}}},
		{"EmptyMeansEmptyObject", ``, []template.Violation{{Path: "$", Message: `missing required property "even_number"`}}},
		{"String", `{"even_number": "six"}`, []template.Violation{{Path: "$.even_number", Message: "must be integer, got string"}}},
		{"Fraction", `{"even_number": 4.5}`, []template.Violation{{Path: "$.even_number", Message: "must be integer, got number"}}},
		{"NotAnObject", `[6]`, []template.Violation{{Path: "$", Message: "must be object, got array"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := engine.CreateTask(t.Context(), ctRequest(def, tc.context))
			var invalid *InvalidContextError
			require.ErrorAs(t, err, &invalid)
			require.Equal(t, tc.want, invalid.Violations)
			require.Equal(t, "linear_workflow/mathematical_sequence@1.0.0", invalid.Template)
			require.Contains(t, err.Error(), tc.want[0].Path+": "+tc.want[0].Message)
		})
	}

	for _, raw := range []string{`{"even_number": `, `{"even_number": 4} trailing`, `not json`} {
		t.Run("NotJSON/"+raw, func(t *testing.T) {
			_, err := engine.CreateTask(t.Context(), ctRequest(def, raw))
			var invalid *InvalidContextError
			require.ErrorAs(t, err, &invalid)
			require.Len(t, invalid.Violations, 1)
			require.Equal(t, "$", invalid.Violations[0].Path)
			require.Contains(t, invalid.Violations[0].Message, "valid JSON")
		})
	}

	ctRequireNothingWritten(t, b, def)
}

// A context can be valid JSON and satisfy the schema and still not be
// storable in PostgreSQL's jsonb: the escape \u0000, a lone UTF-16
// surrogate, a number beyond numeric's range. Such a context is bad input
// and must be refused as such (an *InvalidContextError, 400 with the path),
// not fail as an internal database error.
func TestCreateTaskRejectsContextsThatJSONBCannotStore(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	engine, b := setup(t, def)

	cases := []struct{ name, context, path string }{
		{"NULCharacterEscape", `{"even_number": 4, "note": "a\u0000b"}`, "$.note"},
		{"LoneSurrogateEscape", `{"even_number": 4, "note": "\ud800"}`, ""},
		{"NumberBeyondNumericRange", `{"even_number": 1e200000}`, ""},
		{"InvalidUTF8", "{\"even_number\": 4, \"note\": \"\xff\"}", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := engine.CreateTask(t.Context(), ctRequest(def, tc.context))
			require.Error(t, err)
			var invalid *InvalidContextError
			require.ErrorAs(t, err, &invalid, "got %T: %v", err, err)
			require.NotEmpty(t, invalid.Violations)
			if tc.path != "" {
				require.Equal(t, tc.path, invalid.Violations[0].Path)
			}
		})
	}
	ctRequireNothingWritten(t, b, def)
}

func TestCreateTaskValidatesTheRequest(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	engine, b := setup(t, def)

	cases := []struct {
		name  string
		req   CreateTaskRequest
		field string
	}{
		{"EmptyNamespace", CreateTaskRequest{Name: def.Name, Context: json.RawMessage(`{"even_number": 2}`)}, "namespace"},
		{"EmptyName", CreateTaskRequest{Namespace: def.NamespaceName, Context: json.RawMessage(`{"even_number": 2}`)}, "name"},
		{"IdempotencyKeyTooLong", CreateTaskRequest{
			Namespace: def.NamespaceName, Name: def.Name, Context: json.RawMessage(`{"even_number": 2}`),
			IdempotencyKey: strings.Repeat("k", 257),
		}, "idempotency_key"},
		{"PriorityOutOfRange", CreateTaskRequest{
			Namespace: def.NamespaceName, Name: def.Name, Context: json.RawMessage(`{"even_number": 2}`),
			Priority: 1 << 40,
		}, "priority"},
		{"NULInInitiator", CreateTaskRequest{
			Namespace: def.NamespaceName, Name: def.Name, Context: json.RawMessage(`{"even_number": 2}`),
			Initiator: "a\x00b",
		}, "initiator"},
		{"InvalidUTF8InReason", CreateTaskRequest{
			Namespace: def.NamespaceName, Name: def.Name, Context: json.RawMessage(`{"even_number": 2}`),
			Reason: "\xff",
		}, "reason"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := engine.CreateTask(t.Context(), tc.req)
			var invalid *InvalidRequestError
			require.ErrorAs(t, err, &invalid)
			require.Equal(t, tc.field, invalid.Field)
			require.True(t, strings.HasPrefix(err.Error(), tc.field+": "), err.Error())
		})
	}
	t.Run("UnknownTemplate", func(t *testing.T) {
		_, err := engine.CreateTask(t.Context(), CreateTaskRequest{Namespace: def.NamespaceName, Name: "nope"})
		require.ErrorIs(t, err, ErrNotFound)
		_, err = engine.CreateTask(t.Context(), CreateTaskRequest{Namespace: "nope", Name: def.Name, Version: "1.0.0"})
		require.ErrorIs(t, err, ErrNotFound)
	})
	ctRequireNothingWritten(t, b, def)
}

func TestCreateTaskIdentity(t *testing.T) {
	t.Parallel()
	strict := linearWorkflow()
	keyed := linearWorkflow()
	keyed.Name, keyed.IdentityStrategy = "keyed_sequence", template.IdentityCallerProvided
	unique := linearWorkflow()
	unique.Name, unique.IdentityStrategy = "unique_sequence", template.IdentityAlwaysUnique

	requireDuplicateOf := func(t *testing.T, err error, existing uuid.UUID, byKey bool) {
		t.Helper()
		var dup *DuplicateTaskError
		require.ErrorAs(t, err, &dup)
		require.Equal(t, existing, dup.ExistingTaskUUID)
		require.Equal(t, byKey, dup.ByKey)
		require.True(t, IsConflict(err))
		require.Contains(t, err.Error(), existing.String())
	}

	t.Run("StrictSameContextIsADuplicate", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t, strict)
		first := createTask(t, engine, strict, `{"even_number": 2, "order": {"id": 7, "lines": [1, 2]}}`)

		for _, same := range []string{
			`{"even_number": 2, "order": {"id": 7, "lines": [1, 2]}}`,
			`{"order":{"lines":[1,2],"id":7},"even_number":2}`,
			"{\n  \"order\" : { \"id\" : 7 ,\n \"lines\" : [ 1 , 2 ] } ,\t\"even_number\" : 2\n}",
		} {
			_, err := engine.CreateTask(t.Context(), ctRequest(strict, same))
			requireDuplicateOf(t, err, first.UUID, false)
			var dup *DuplicateTaskError
			require.ErrorAs(t, err, &dup)
			require.Equal(t, template.IdentityStrict, dup.Strategy)
		}

		for _, different := range []string{
			`{"even_number": 4, "order": {"id": 7, "lines": [1, 2]}}`,
			`{"even_number": 2, "order": {"id": 7, "lines": [2, 1]}}`, // array order matters
		} {
			_, err := engine.CreateTask(t.Context(), ctRequest(strict, different))
			require.NoError(t, err, different)
		}
		require.Equal(t, 3, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks"))
	})

	t.Run("IdempotencyKeyIsTheIdentityWhateverTheContext", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t, strict, unique)
		req := ctRequest(strict, `{"even_number": 2}`)
		req.IdempotencyKey = "order-1"
		first, err := engine.CreateTask(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, "order-1", first.IdempotencyKey)

		req.Context = json.RawMessage(`{"even_number": 4}`)
		_, err = engine.CreateTask(t.Context(), req)
		requireDuplicateOf(t, err, first.UUID, true)
		require.Contains(t, err.Error(), "the same idempotency key")

		// Another key with the first context is another task.
		req.Context, req.IdempotencyKey = json.RawMessage(`{"even_number": 2}`), "order-2"
		_, err = engine.CreateTask(t.Context(), req)
		require.NoError(t, err)

		// A key overrides always_unique too; its scope is one template.
		req = ctRequest(unique, `{"even_number": 2}`)
		req.IdempotencyKey = "order-1"
		u, err := engine.CreateTask(t.Context(), req)
		require.NoError(t, err, "the same key under another template is not a duplicate")
		req.Context = json.RawMessage(`{"even_number": 8}`)
		_, err = engine.CreateTask(t.Context(), req)
		requireDuplicateOf(t, err, u.UUID, true)
		require.Equal(t, 3, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks"))
	})

	t.Run("CallerProvidedRequiresAKey", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t, keyed)
		_, err := engine.CreateTask(t.Context(), ctRequest(keyed, `{"even_number": 2}`))
		var invalid *InvalidRequestError
		require.ErrorAs(t, err, &invalid)
		require.Equal(t, "idempotency_key", invalid.Field)
		require.Contains(t, invalid.Message, "caller_provided")
		require.Zero(t, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks"))

		req := ctRequest(keyed, `{"even_number": 2}`)
		req.IdempotencyKey = "k1"
		first, err := engine.CreateTask(t.Context(), req)
		require.NoError(t, err)
		_, err = engine.CreateTask(t.Context(), req)
		requireDuplicateOf(t, err, first.UUID, true)
		req.IdempotencyKey = "k2"
		_, err = engine.CreateTask(t.Context(), req)
		require.NoError(t, err, "the same context under another key is another task")
	})

	t.Run("AlwaysUniqueNeverDuplicates", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t, unique)
		a := createTask(t, engine, unique, `{"even_number": 2}`)
		c := createTask(t, engine, unique, `{"even_number": 2}`)
		require.NotEqual(t, a.UUID, c.UUID)
		require.Equal(t, 2, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks"))
	})
}

func TestCreateTaskCreatesARunningTask(t *testing.T) {
	t.Parallel()
	def := definition("fan_in_workflow", "fan_in",
		testStep{"left", nil},
		testStep{"right", nil},
		testStep{"join", []string{"left", "right"}},
	)
	engine, b := setup(t, def)

	t.Run("RootStepsEnqueuedOthersPendingAndHistoryRecorded", func(t *testing.T) {
		correlation := uuid.New()
		req := ctRequest(def, `{"even_number": 2}`)
		req.CorrelationID = correlation
		req.Initiator, req.SourceSystem, req.Reason, req.Priority = "alice", "billing", "monthly run", 7
		task, err := engine.CreateTask(t.Context(), req)
		require.NoError(t, err)

		require.Equal(t, TaskStepsInProcess, task.State)
		require.Equal(t, "fan_in_workflow", task.Namespace)
		require.Equal(t, "fan_in", task.Name)
		require.Equal(t, "1.0.0", task.Version)
		require.JSONEq(t, `{"even_number": 2}`, string(task.Context))
		require.Equal(t, correlation, task.CorrelationID, "a given correlation id is kept")
		require.Equal(t, "alice", task.Initiator)
		require.Equal(t, "billing", task.SourceSystem)
		require.Equal(t, "monthly run", task.Reason)
		require.Equal(t, 7, task.Priority)
		require.Equal(t, 3, task.StepCount)
		require.Nil(t, task.CompletedAt)
		require.False(t, task.CreatedAt.IsZero())

		states := map[string]StepState{}
		for _, s := range task.Steps {
			states[s.Name] = s.State
			require.Zero(t, s.Attempts, s.Name)
			require.Equal(t, 3, s.MaxAttempts, s.Name)
		}
		require.Equal(t, map[string]StepState{"left": StepEnqueued, "right": StepEnqueued, "join": StepPending}, states)
		require.NotNil(t, task.Step("left").EnqueuedAt)
		require.Nil(t, task.Step("join").EnqueuedAt)

		// Exactly one message per root step, naming the task and the step.
		require.EqualValues(t, 2, ctQueueLength(t, b, def))
		msgs, err := b.queue.Read(t.Context(), b.pool, dispatch.StepQueue(def.NamespaceName), 30*time.Second, 10)
		require.NoError(t, err)
		sent := map[string]dispatch.StepMessage{}
		for _, msg := range msgs {
			var m dispatch.StepMessage
			require.NoError(t, json.Unmarshal(msg.Body, &m))
			sent[m.StepName] = m
		}
		require.Len(t, sent, 2)
		for _, name := range []string{"left", "right"} {
			m, ok := sent[name]
			require.True(t, ok, "message for %s", name)
			require.Equal(t, task.UUID, m.TaskUUID)
			require.Equal(t, task.Step(name).UUID, m.StepUUID)
			require.Equal(t, correlation, m.CorrelationID)
			require.Equal(t, def.NamespaceName, m.Namespace)
		}

		transitions, err := b.queries.ListTaskTransitions(t.Context(), b.pool, task.UUID)
		require.NoError(t, err)
		var chain []string
		for i, tr := range transitions {
			if i == 0 {
				require.Nil(t, tr.FromState)
			} else {
				require.NotNil(t, tr.FromState)
				require.Equal(t, chain[i-1], *tr.FromState)
			}
			require.Equal(t, "orchestrator-1", tr.Actor)
			require.NotEmpty(t, tr.Reason)
			chain = append(chain, tr.ToState)
		}
		require.Equal(t, []string{"pending", "initializing", "enqueuing_steps", "steps_in_process"}, chain)

		steps, err := b.queries.ListStepTransitions(t.Context(), b.pool, task.UUID)
		require.NoError(t, err)
		byStep := map[uuid.UUID][]string{}
		for _, tr := range steps {
			byStep[tr.StepUUID] = append(byStep[tr.StepUUID], tr.ToState)
		}
		require.Equal(t, []string{"pending", "enqueued"}, byStep[task.Step("left").UUID])
		require.Equal(t, []string{"pending", "enqueued"}, byStep[task.Step("right").UUID])
		require.Equal(t, []string{"pending"}, byStep[task.Step("join").UUID])
	})

	t.Run("CorrelationIDGeneratedWhenNotGiven", func(t *testing.T) {
		a, err := engine.CreateTask(t.Context(), ctRequest(def, `{"even_number": 4}`))
		require.NoError(t, err)
		c, err := engine.CreateTask(t.Context(), ctRequest(def, `{"even_number": 6}`))
		require.NoError(t, err)
		require.NotEqual(t, uuid.Nil, a.CorrelationID)
		require.NotEqual(t, a.CorrelationID, c.CorrelationID)
		require.Empty(t, a.Initiator)
		require.Zero(t, a.Priority)
		again, err := engine.GetTask(t.Context(), a.UUID)
		require.NoError(t, err)
		require.Equal(t, a.CorrelationID, again.CorrelationID, "stored, not recomputed")
	})
}

func TestCreateTaskKeepsBigNumbersExact(t *testing.T) {
	t.Parallel()
	def := linearWorkflow()
	engine, b := setup(t, def)
	tenTo40 := "1" + strings.Repeat("0", 40)

	// 10^40 + 1 is odd; only exact arithmetic tells (as a float64 it is even).
	_, err := engine.CreateTask(t.Context(), ctRequest(def, `{"even_number": `+tenTo40[:40]+`1}`))
	var invalid *InvalidContextError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, []template.Violation{{Path: "$.even_number", Message: "must be multiple of 2"}}, invalid.Violations)

	task := createTask(t, engine, def, `{"even_number": `+tenTo40+`}`)
	require.Equal(t, tenTo40, ctNumberText(t, task.Context, "even_number"))
	var stored string
	require.NoError(t, b.pool.QueryRow(t.Context(),
		"SELECT (context->'even_number')::text FROM tasker.tasks WHERE task_uuid = $1", task.UUID).Scan(&stored))
	require.Equal(t, tenTo40, stored, "the database holds the number exactly")

	// The number survives the whole pipeline: step 1 squares it.
	drive(t, engine, b, finished(t, engine, task.UUID))
	task, err = engine.GetTask(t.Context(), task.UUID)
	require.NoError(t, err)
	require.Equal(t, TaskComplete, task.State)
	require.Equal(t, "1"+strings.Repeat("0", 80), stepValue(t, task, "linear_step_1"))
}

// ctNumberText returns the JSON text of a top-level number field.
func ctNumberText(t *testing.T, raw json.RawMessage, field string) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	require.NoError(t, dec.Decode(&obj))
	n, ok := obj[field].(json.Number)
	require.True(t, ok, "%s is a number in %s", field, raw)
	return n.String()
}

func TestCreateTaskConcurrently(t *testing.T) {
	t.Parallel()

	t.Run("DistinctContextsAllCreated", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		const n = 50
		tasks := make([]*Task, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				tasks[i], errs[i] = engine.CreateTask(t.Context(), ctRequest(def, fmt.Sprintf(`{"even_number": %d}`, 2*(i+1))))
			})
		}
		wg.Wait()
		seen := map[uuid.UUID]bool{}
		for i := range n {
			require.NoError(t, errs[i], "goroutine %d", i)
			require.Equal(t, TaskStepsInProcess, tasks[i].State)
			seen[tasks[i].UUID] = true
		}
		require.Len(t, seen, n)
		require.Equal(t, n, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks"))
		require.Equal(t, 4*n, tplCount(t, b.pool, "SELECT count(*) FROM tasker.workflow_steps"))
		require.EqualValues(t, n, ctQueueLength(t, b, def), "one root message per task")
	})

	t.Run("SameStrictContextCreatedOnce", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		const n = 20
		tasks := make([]*Task, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { tasks[i], errs[i] = engine.CreateTask(t.Context(), ctRequest(def, `{"even_number": 2}`)) })
		}
		wg.Wait()
		var winner *Task
		var duplicates []*DuplicateTaskError
		for i := range n {
			if errs[i] == nil {
				require.Nil(t, winner, "a second task was created")
				winner = tasks[i]
				continue
			}
			var dup *DuplicateTaskError
			require.ErrorAs(t, errs[i], &dup, "goroutine %d", i)
			duplicates = append(duplicates, dup)
		}
		require.NotNil(t, winner)
		require.Len(t, duplicates, n-1)
		for _, dup := range duplicates {
			require.Equal(t, winner.UUID, dup.ExistingTaskUUID)
		}
		require.Equal(t, 1, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks"))
		require.Equal(t, 4, tplCount(t, b.pool, "SELECT count(*) FROM tasker.workflow_steps"))
		require.EqualValues(t, 1, ctQueueLength(t, b, def))
	})
}

// CreateTask validates the context against the template row it resolved,
// then copies the template's steps in its transaction. A registration that
// commits in between must not give the task steps of a definition whose
// schema the context was never checked against (ARCHITECTURE: validate,
// then create from a snapshot of the template). The test makes the creation
// stop right after it locked the template, at its first write, registers a
// changed definition meanwhile, and lets the creation go on.
func TestCreateTaskRacingARegistrationKeepsSchemaAndStepsTogether(t *testing.T) {
	t.Parallel()
	oldDef := linearWorkflow()
	newDef := linearWorkflow()
	newDef.InputSchema = json.RawMessage(`{"type": "object", "required": ["even_number", "customer"]}`)
	extra := newDef.Steps[3]
	extra.Name, extra.Handler.Callable, extra.DependsOn = "linear_step_5", "linear_workflow.linear_step_5", []string{"linear_step_4"}
	newDef.Steps = append(newDef.Steps, extra)

	t.Run("RegisteredBetweenValidationAndInsertStartsOver", func(t *testing.T) {
		t.Parallel()
		engine, b := setup(t, oldDef)
		validated, err := engine.Templates().Resolve(t.Context(), oldDef.NamespaceName, oldDef.Name, "")
		require.NoError(t, err)
		_, err = engine.Templates().Register(t.Context(), newDef, "test")
		require.NoError(t, err)

		err = dbtx.WithTx(t.Context(), b.pool, func(tx pgx.Tx) error {
			_, err := engine.insertTask(t.Context(), tx, &newTask{
				uuid: uuid.New(), tmpl: validated, req: ctRequest(oldDef, `{"even_number": 2}`),
				context: json.RawMessage(`{"even_number": 2}`), identity: identity{hash: "h"}, correlationID: uuid.New(),
			})
			return err
		})
		require.ErrorIs(t, err, errTemplateChanged)
		ctRequireNothingWritten(t, b, oldDef)

		// CreateTask starts over and validates against the new schema.
		_, err = engine.CreateTask(t.Context(), ctRequest(oldDef, `{"even_number": 2}`))
		var invalid *InvalidContextError
		require.ErrorAs(t, err, &invalid)
	})

	t.Run("RegistrationWaitsForACreationInProgress", func(t *testing.T) {
		t.Parallel()
		other := linearWorkflow()
		other.Name = "other_sequence"
		engine, b := setup(t, oldDef, other)
		// The creation's insert waits for a transaction that inserted a
		// task with the same identity and has not committed. That task is
		// of another template, so that the transaction holds no lock on
		// oldDef's row: only the creation does.
		validated, err := engine.Templates().Resolve(t.Context(), oldDef.NamespaceName, oldDef.Name, "")
		require.NoError(t, err)
		id, err := taskIdentity(validated, ctRequest(oldDef, `{"even_number": 2}`), json.RawMessage(`{"even_number": 2}`))
		require.NoError(t, err)
		otherRow, err := engine.Templates().Resolve(t.Context(), other.NamespaceName, other.Name, "")
		require.NoError(t, err)
		lockTx, err := b.pool.Begin(t.Context())
		require.NoError(t, err)
		defer func() { _ = lockTx.Rollback(context.WithoutCancel(t.Context())) }()
		_, err = lockTx.Exec(t.Context(), `INSERT INTO tasker.tasks (task_uuid, template_id, namespace_name, name, version,
			state, context, identity_hash, correlation_id, step_count)
			VALUES (gen_random_uuid(), $1, $2, $3, $4, 'steps_in_process', '{}', $5, gen_random_uuid(), 0)`,
			otherRow.TemplateID, other.NamespaceName, other.Name, otherRow.Version, id.hash)
		require.NoError(t, err)

		created := make(chan error, 1)
		var task *Task
		go func() {
			var err error
			task, err = engine.CreateTask(t.Context(), ctRequest(oldDef, `{"even_number": 2}`))
			created <- err
		}()
		waitingOnLocks := func(n int) func() bool {
			return func() bool {
				return tplCount(t, b.pool, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") >= n
			}
		}
		require.Eventually(t, waitingOnLocks(1), 10*time.Second, 5*time.Millisecond, "the creation waits for the other insert")
		registered := make(chan error, 1)
		go func() {
			_, err := engine.Templates().Register(t.Context(), newDef, "test")
			registered <- err
		}()
		require.Eventually(t, waitingOnLocks(2), 10*time.Second, 5*time.Millisecond, "the registration waits for the creation")
		require.NoError(t, lockTx.Rollback(t.Context()))

		require.NoError(t, <-created)
		require.NoError(t, <-registered)
		require.Len(t, task.Steps, len(oldDef.Steps), "the task keeps the definition its context was validated against")
	})
}

// TestCreateTaskFollowsTemplateChangesAfterCachingIt checks that a creation
// that finds its template in the engine's templateCache still creates the
// task from the template as it is stored: versions registered, retired or
// restored since, and definitions changed since, by the engine or not.
func TestCreateTaskFollowsTemplateChangesAfterCachingIt(t *testing.T) {
	t.Parallel()

	t.Run("VersionsAddedRetiredOrRestored", func(t *testing.T) {
		t.Parallel()
		v1, v2, v3 := tplWithVersion(linearWorkflow(), "1.0.0"), tplWithVersion(linearWorkflow(), "2.0.0"), tplWithVersion(linearWorkflow(), "3.0.0")
		engine, _ := setup(t, v1)
		store := engine.Templates()
		n := 0
		newest := func() string {
			t.Helper()
			n += 2 // the strict identity strategy: each task its own context
			task := createTask(t, engine, v1, fmt.Sprintf(`{"even_number": %d}`, n))
			_, cached := engine.resolved.get(templateRef{namespace: v1.NamespaceName, name: v1.Name})
			require.True(t, cached, "the creation cached its template")
			return task.Version
		}
		require.Equal(t, "1.0.0", newest())
		require.Equal(t, "1.0.0", newest(), "from the cache")

		_, err := store.Register(t.Context(), v3, "test")
		require.NoError(t, err)
		require.Equal(t, "3.0.0", newest(), "a version registered since")

		_, err = store.Retire(t.Context(), v3.NamespaceName, v3.Name, "3.0.0")
		require.NoError(t, err)
		require.Equal(t, "1.0.0", newest(), "the newest retired since")

		_, err = store.Register(t.Context(), v2, "test")
		require.NoError(t, err)
		require.Equal(t, "2.0.0", newest())
		// 3.0.0 comes back with the id it had, lower than 2.0.0's.
		_, err = store.Register(t.Context(), v3, "test")
		require.NoError(t, err)
		require.Equal(t, "3.0.0", newest(), "a retired version restored since")
	})

	t.Run("DefinitionChangedSince", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		strict := linearWorkflow()
		strict.InputSchema = json.RawMessage(`{"type": "object", "required": ["even_number", "customer"]}`)
		engine, _ := setup(t, def)
		createTask(t, engine, def, `{"even_number": 2}`)

		// Re-registered with a stricter schema: the cached definition would
		// accept the context, the stored one does not.
		_, err := engine.Templates().Register(t.Context(), strict, "test")
		require.NoError(t, err)
		_, err = engine.CreateTask(t.Context(), ctRequest(def, `{"even_number": 4}`))
		var invalid *InvalidContextError
		require.ErrorAs(t, err, &invalid)

		// And back: the cached (strict) definition rejects the context, the
		// stored one accepts it.
		_, err = engine.Templates().Register(t.Context(), def, "test")
		require.NoError(t, err)
		task, err := engine.CreateTask(t.Context(), ctRequest(def, `{"even_number": 6}`))
		require.NoError(t, err)
		require.Len(t, task.Steps, 4)
	})

	t.Run("NamedVersionRetiredSince", func(t *testing.T) {
		t.Parallel()
		def := linearWorkflow()
		engine, b := setup(t, def)
		req := ctRequest(def, `{"even_number": 2}`)
		req.Version = def.Version
		_, err := engine.CreateTask(t.Context(), req)
		require.NoError(t, err)
		_, err = engine.Templates().Retire(t.Context(), def.NamespaceName, def.Name, def.Version)
		require.NoError(t, err)
		req.Context = json.RawMessage(`{"even_number": 4}`)
		_, err = engine.CreateTask(t.Context(), req)
		require.ErrorIs(t, err, ErrTemplateRetired)
		require.Equal(t, 1, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks"), "only the first task")
	})
}
