package orchestration

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/template"
)

// csNewTask prepares the creation of a task as createTask does, up to the
// point where it is handed to the batcher.
func csNewTask(t *testing.T, engine *Engine, req CreateTaskRequest) *newTask {
	t.Helper()
	resolved, err := engine.templates.resolve(t.Context(), templateRef{namespace: req.Namespace, name: req.Name, version: req.Version})
	require.NoError(t, err)
	n, err := engine.prepareTask(resolved, req)
	require.NoError(t, err)
	return n
}

// csCreateTogether writes tasks as one flush of the batcher does
// (createTogether) and returns the answer to each, in the order of tasks.
// It fails the test when the shared transaction failed.
func csCreateTogether(t *testing.T, engine *Engine, tasks ...*newTask) []createAnswer {
	t.Helper()
	require.Greater(t, len(tasks), 1, "a batch of one runs the single-task statement")
	calls := make([]*createCall, len(tasks))
	for i, n := range tasks {
		calls[i] = newCreateCall(t.Context(), n)
	}
	engine.createTogether(slices.Clone(calls)) // it sorts its batch
	answers := make([]createAnswer, len(calls))
	for i, call := range calls {
		answers[i] = <-call.done
		require.False(t, answers[i].alone, "the shared transaction failed")
	}
	return answers
}

// csWrites returns the transaction and the command within it
// ("xmin/cmin") of every row the creation of the task wrote: the task, its
// steps, edges, transitions and step messages. All the rows one statement
// writes have the same command id, and each statement of a transaction has
// its own, so the command id tells apart the statements of one
// transaction.
func csWrites(t *testing.T, b *bundle, task *Task) []string {
	t.Helper()
	rows, err := b.pool.Query(t.Context(), `SELECT DISTINCT w.w FROM (
		SELECT xmin::text || '/' || cmin::text AS w FROM tasker.tasks WHERE task_uuid = $1
		UNION ALL SELECT xmin::text || '/' || cmin::text FROM tasker.workflow_steps WHERE task_uuid = $1
		UNION ALL SELECT xmin::text || '/' || cmin::text FROM tasker.workflow_step_edges WHERE task_uuid = $1
		UNION ALL SELECT xmin::text || '/' || cmin::text FROM tasker.step_transitions WHERE task_uuid = $1
		UNION ALL SELECT xmin::text || '/' || cmin::text FROM tasker.task_transitions WHERE task_uuid = $1
		UNION ALL SELECT xmin::text || '/' || cmin::text FROM `+csQueueTable(task.Namespace)+` WHERE message->>'task_uuid' = $1::text
	) w ORDER BY 1`, task.UUID)
	require.NoError(t, err)
	writes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return writes
}

// csQueueTable is the table of a namespace's step queue.
func csQueueTable(namespace string) string {
	return pgx.Identifier{"pgmq", "q_" + dispatch.StepQueue(namespace)}.Sanitize()
}

// csCreation is every row the creation of a task wrote, as JSON
// (to_jsonb of the row), with what differs from one creation to another by
// design replaced by labels (csNormalize). Rows with ids are in the order
// of their ids, which are dropped.
type csCreation struct {
	Task            any
	Steps           []any
	Edges           []string
	StepTransitions []any
	TaskTransitions []any
	Messages        []any
}

// csRows reads what the creation of task wrote.
func csRows(t *testing.T, b *bundle, task *Task) csCreation {
	t.Helper()
	labels := map[string]string{task.UUID.String(): "<task>", task.CorrelationID.String(): "<correlation>"}
	for _, s := range task.Steps {
		labels[s.UUID.String()] = "<step " + s.Name + ">"
	}
	var identityHash string
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT identity_hash FROM tasker.tasks WHERE task_uuid = $1", task.UUID).Scan(&identityHash))
	labels[identityHash] = "<identity>"
	if task.IdempotencyKey != "" {
		labels[task.IdempotencyKey] = "<key>"
	}
	read := func(sql string) []any {
		rows, err := b.pool.Query(t.Context(), sql, task.UUID)
		require.NoError(t, err)
		docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		require.NoError(t, err)
		out := make([]any, len(docs))
		for i, doc := range docs {
			var v any
			require.NoError(t, json.Unmarshal(doc, &v))
			out[i] = csNormalize(t, v, labels, task.CreatedAt)
		}
		return out
	}
	// The contexts differ by design; TestCreateTaskBatchWritesWhatACreationAloneWrites
	// checks them on their own.
	tasks := read("SELECT to_jsonb(x) - 'context' FROM tasker.tasks x WHERE task_uuid = $1")
	require.Len(t, tasks, 1)
	// Edges have no order: they are compared as a sorted list.
	var edges []string
	for _, e := range read("SELECT to_jsonb(x) FROM tasker.workflow_step_edges x WHERE task_uuid = $1") {
		edges = append(edges, fmt.Sprint(e))
	}
	slices.Sort(edges)
	return csCreation{
		Task:            tasks[0],
		Steps:           read("SELECT to_jsonb(x) FROM tasker.workflow_steps x WHERE task_uuid = $1 ORDER BY position"),
		Edges:           edges,
		StepTransitions: read("SELECT to_jsonb(x) - 'id' FROM tasker.step_transitions x WHERE task_uuid = $1 ORDER BY id"),
		TaskTransitions: read("SELECT to_jsonb(x) - 'id' FROM tasker.task_transitions x WHERE task_uuid = $1 ORDER BY id"),
		Messages:        read("SELECT to_jsonb(x) - 'msg_id' FROM " + csQueueTable(task.Namespace) + " x WHERE message->>'task_uuid' = $1::text ORDER BY msg_id"),
	}
}

// csNormalize replaces, anywhere in v, the values that name one creation
// (the labels: uuids, identity, key) by their label, and timestamps by
// "<now>" when they are the creating transaction's now() (the task's
// created_at) or "<clock>" when they are later (clock_timestamp()).
func csNormalize(t *testing.T, v any, labels map[string]string, now time.Time) any {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = csNormalize(t, x, labels, now)
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = csNormalize(t, x, labels, now)
		}
		return v
	case string:
		if label, ok := labels[v]; ok {
			return label
		}
		if at, err := time.Parse(time.RFC3339Nano, v); err == nil {
			if at.Equal(now) {
				return "<now>"
			}
			require.True(t, at.After(now), "timestamp %s before the task's creation %s", at, now)
			return "<clock>"
		}
	}
	return v
}

func csFanInWorkflow() template.Definition {
	return definition("fan_in_workflow", "fan_in",
		testStep{"left", nil},
		testStep{"right", nil},
		testStep{"join", []string{"left", "right"}},
	)
}

// The tasks of one flush are written by one statement per step queue, in
// one transaction, and each of them exactly as the single-task statement
// (createSQLText) writes a task alone: the same task row, steps, edges,
// transitions in the same order and queue messages, up to uuids and
// timestamps, which keep their relations (now() or later).
func TestCreateTaskBatchWritesWhatACreationAloneWrites(t *testing.T) {
	t.Parallel()
	other := linearWorkflow()
	other.Name = "other_sequence" // a second template on the linear step queue
	defs := []template.Definition{linearWorkflow(), diamondWorkflow(), treeWorkflow(), mixedDAGWorkflow(), csFanInWorkflow(), other}
	engine, b := setup(t, defs...)

	// Two requests per template: one with every optional field, one plain.
	requests := func(def template.Definition, kind string, even int) []CreateTaskRequest {
		full := ctRequest(def, fmt.Sprintf(`{"even_number": %d, "note": "caf\u00e9", "nested": {"b": 1, "a": [1, 2.50]}}`, even))
		full.IdempotencyKey, full.Initiator, full.SourceSystem, full.Reason, full.Priority = "key-"+kind+"-"+def.Name, "alice", "billing", "a reason", -3
		return []CreateTaskRequest{full, ctRequest(def, fmt.Sprintf(`{"even_number": %d}`, even+2))}
	}
	alone := map[string][]*Task{}
	var batch []*newTask
	for _, def := range defs {
		for _, req := range requests(def, "alone", 2) {
			task, err := engine.insertTask(t.Context(), b.pool, csNewTask(t, engine, req))
			require.NoError(t, err)
			alone[def.Name] = append(alone[def.Name], task)
		}
		for _, req := range requests(def, "batch", 10) {
			batch = append(batch, csNewTask(t, engine, req))
		}
	}
	answers := csCreateTogether(t, engine, batch...)

	// Each queue's tasks have their own statement, the statements run in
	// the order of the queues' names, and all in one transaction.
	commands := map[string]int{} // step queue → command id
	transactions := map[string]bool{}
	var created []uuid.UUID
	for i, answer := range answers {
		require.NoError(t, answer.err)
		task := answer.task
		def := defs[i/2]
		require.Equal(t, batch[i].uuid, task.UUID)
		cbRequireAsStored(t, engine, b, def, task)
		twin := alone[def.Name][i%2]
		want, got := csRows(t, b, twin), csRows(t, b, task)
		require.Equal(t, want, got, "%s: a task of a batch is written as one created alone", def.Name)
		require.JSONEq(t, string(batch[i].context), string(task.Context))

		writes := csWrites(t, b, task)
		require.Len(t, writes, 1, "%s: every row of the task's creation is written by one statement", def.Name)
		xmin, cmin, _ := strings.Cut(writes[0], "/")
		command, err := strconv.Atoi(cmin)
		require.NoError(t, err)
		transactions[xmin] = true
		queue := dispatch.StepQueue(def.NamespaceName)
		if c, ok := commands[queue]; ok {
			require.Equal(t, c, command, "%s: the tasks of a step queue share one statement", def.Name)
		}
		commands[queue] = command
		created = append(created, task.UUID)
	}
	require.Len(t, transactions, 1, "one transaction for the batch")
	queues := slices.Sorted(maps.Keys(commands))
	require.Len(t, queues, 5, "linear_workflow's two templates share a step queue")
	for i := 1; i < len(queues); i++ {
		require.Less(t, commands[queues[i-1]], commands[queues[i]], "one statement per step queue, in the order of the queues")
	}

	// The rows that get ids have them in the order the single-task
	// statements, one per task in the order of the sorted batch, would
	// have given them: task by task, without interleaving.
	sorted := slices.Clone(batch)
	slices.SortStableFunc(sorted, func(a, b *newTask) int {
		return cmp.Or(cmp.Compare(dispatch.StepQueue(a.tmpl.NamespaceName), dispatch.StepQueue(b.tmpl.NamespaceName)),
			cmp.Compare(a.identity.hash, b.identity.hash))
	})
	var order []uuid.UUID
	for _, n := range sorted {
		order = append(order, n.uuid)
	}
	require.Equal(t, order, csOrderOfIds(t, b, "SELECT task_uuid FROM tasker.task_transitions WHERE task_uuid = ANY($1) ORDER BY id", created))
	require.Equal(t, order, csOrderOfIds(t, b, "SELECT task_uuid FROM tasker.step_transitions WHERE task_uuid = ANY($1) ORDER BY id", created))
	for _, def := range defs {
		var want []uuid.UUID
		for _, n := range sorted {
			if n.tmpl.NamespaceName == def.NamespaceName {
				want = append(want, n.uuid)
			}
		}
		require.Equal(t, want, csOrderOfIds(t, b, "SELECT (message->>'task_uuid')::uuid FROM "+csQueueTable(def.NamespaceName)+
			" WHERE (message->>'task_uuid')::uuid = ANY($1) ORDER BY msg_id", created), def.NamespaceName)
	}
}

// csOrderOfIds returns the tasks that query (of $1, the tasks) returns,
// each once, in order, and fails the test if the rows of two tasks
// interleave.
func csOrderOfIds(t *testing.T, b *bundle, query string, tasks []uuid.UUID) []uuid.UUID {
	t.Helper()
	rows, err := b.pool.Query(t.Context(), query, tasks)
	require.NoError(t, err)
	all, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	require.NoError(t, err)
	order := slices.Compact(all)
	seen := map[uuid.UUID]bool{}
	for _, id := range order {
		require.False(t, seen[id], "the rows of task %s interleave with another's", id)
		seen[id] = true
	}
	return order
}

// csRecordInserts makes the database log, in order, the identity of every
// row an INSERT into tasker.tasks processes (a BEFORE trigger fires for
// each row in the order the INSERT takes them, also for one that ON
// CONFLICT then skips) and returns a function that reads the log.
func csRecordInserts(t *testing.T, b *bundle) func() []string {
	t.Helper()
	_, err := b.pool.Exec(t.Context(), `
		CREATE TABLE tasker.cs_inserts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, identity_hash text NOT NULL);
		CREATE FUNCTION tasker.cs_record_insert() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO tasker.cs_inserts (identity_hash) VALUES (NEW.identity_hash); RETURN NEW; END $$;
		CREATE TRIGGER cs_record_insert BEFORE INSERT ON tasker.tasks
		FOR EACH ROW EXECUTE FUNCTION tasker.cs_record_insert();`)
	require.NoError(t, err)
	return func() []string {
		rows, err := b.pool.Query(t.Context(), "SELECT identity_hash FROM tasker.cs_inserts ORDER BY id")
		require.NoError(t, err)
		hashes, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return hashes
	}
}

// Every outcome of one task of a batch is its own: duplicates (of an older
// task, or of another task of the batch, the first in the batch winning),
// a changed or retired template and a template without a root step leave
// the other tasks created, in one transaction, by one statement per step
// queue. The statements insert their tasks in identity order.
func TestCreateTaskBatchOutcomes(t *testing.T) {
	t.Parallel()
	linear, diamond := linearWorkflow(), diamondWorkflow()
	retired := linearWorkflow()
	retired.Name = "retired_sequence"
	rootless := definition("rootless_workflow", "rootless", testStep{"only", nil})
	engine, b := setup(t, linear, diamond, retired, rootless)
	older := createTask(t, engine, diamond, `{"even_number": 1000}`)

	// rootless's only step becomes its own parent (registration refuses
	// that; the statement must still not create a task that cannot start).
	_, err := b.pool.Exec(t.Context(), `INSERT INTO tasker.template_edges (template_id, from_step, to_step)
		SELECT template_id, 'only', 'only' FROM tasker.templates WHERE name = 'rootless'`)
	require.NoError(t, err)
	retiredTask := csNewTask(t, engine, ctRequest(retired, `{"even_number": 2}`))
	_, err = b.pool.Exec(t.Context(), "UPDATE tasker.templates SET retired = true, retired_at = now() WHERE name = 'retired_sequence'")
	require.NoError(t, err)
	stale := csNewTask(t, engine, ctRequest(linear, `{"even_number": 8}`))
	stale.tmpl.Fingerprint = "validated against another definition"
	// Chosen as the newest of other active versions than the template has.
	outdated := csNewTask(t, engine, ctRequest(linear, `{"even_number": 10}`))
	require.NotEmpty(t, outdated.activeVersions, "a request without a version records the versions it chose among")
	outdated.activeVersions += ",0"
	inserts := csRecordInserts(t, b)

	first := csNewTask(t, engine, ctRequest(linear, `{"even_number": 2}`))
	tasks := []*newTask{
		csNewTask(t, engine, ctRequest(diamond, `{"even_number": 2}`)),
		first,
		csNewTask(t, engine, ctRequest(linear, `{"even_number": 2}`)),
		csNewTask(t, engine, ctRequest(diamond, `{"even_number": 1000}`)),
		stale,
		csNewTask(t, engine, ctRequest(rootless, `{"even_number": 2}`)),
		csNewTask(t, engine, ctRequest(linear, `{"even_number": 4}`)),
		retiredTask,
		csNewTask(t, engine, ctRequest(linear, `{"even_number": 2}`)),
		outdated,
	}
	answers := csCreateTogether(t, engine, tasks...)
	wantErrs := []error{
		nil, nil, errDuplicateIdentity, errDuplicateIdentity, errTemplateChanged, errNoRootStep, nil,
		errTemplateChanged, errDuplicateIdentity, errTemplateChanged,
	}
	var created []uuid.UUID
	for i, answer := range answers {
		require.Equal(t, wantErrs[i], answer.err, "task %d", i)
		if answer.err != nil {
			require.Nil(t, answer.task)
			continue
		}
		require.Equal(t, tasks[i].uuid, answer.task.UUID, "the first of the batch with an identity wins")
		def := linear
		if tasks[i].tmpl.NamespaceName == diamond.NamespaceName {
			def = diamond
		}
		cbRequireAsStored(t, engine, b, def, answer.task)
		created = append(created, answer.task.UUID)
	}
	require.Equal(t, 1, cbTransactions(t, b, created))
	require.Equal(t, 2, cbStatements(t, b, created), "one statement per step queue")
	require.Equal(t, 4, tplCount(t, b.pool, "SELECT count(*) FROM tasker.tasks"), "the older task and the three created")
	require.EqualValues(t, 2, ctQueueLength(t, b, linear))
	require.EqualValues(t, 2, ctQueueLength(t, b, diamond), "the older task's root and the new one's")
	require.Zero(t, ctQueueLength(t, b, rootless))

	// The tasks whose template is unchanged and has a root are inserted
	// (or found duplicates) in the order of their step queue, then of
	// their identity; the first of equal identities first.
	var want []string
	for _, ns := range []string{diamond.NamespaceName, linear.NamespaceName} {
		var hashes []string
		for _, n := range tasks {
			if n.tmpl.NamespaceName == ns && n != stale && n != retiredTask && n != outdated {
				hashes = append(hashes, n.identity.hash)
			}
		}
		slices.Sort(hashes)
		want = append(want, hashes...)
	}
	require.Equal(t, want, inserts())
	require.Equal(t, older.UUID, tplUUID(t, b, "SELECT task_uuid FROM tasker.tasks WHERE identity_hash = $1", tasks[3].identity.hash))
}

// tplUUID returns the uuid a query returns.
func tplUUID(t *testing.T, b *bundle, sql string, args ...any) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	require.NoError(t, b.pool.QueryRow(t.Context(), sql, args...).Scan(&id))
	return id
}
