package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/template"
)

var testKey = workflowsv1alpha1.TemplateKey{NamespaceName: "ns_a", Name: "flow", Version: "1.0.0"}

// Outcomes of each kind, as the sync steps produce them.
var (
	syncedOutcome  = outcome{Generation: 3, Key: testKey, StepCount: 4}
	invalidOutcome = outcome{Generation: 3, Key: testKey, StepCount: 3, Err: &invalidSpecError{Problems: []template.Problem{
		{Field: "spec.steps", Message: "dependency cycle: a → b → c → a"},
		{Field: "spec.inputSchema", Message: "is not a valid JSON Schema: $.type: got number, want string"},
	}}}
	conflictOutcome = outcome{Generation: 3, Key: testKey, StepCount: 4, Err: fmt.Errorf("in tx: %w",
		&orchestration.TemplateConflictError{Key: "ns_a/flow@1.0.0", Owner: "k8s:team/first"})}
	databaseOutcome = outcome{Generation: 3, Key: testKey, Err: errors.New("dial tcp 10.0.0.1:5432: connection refused")}
)

func TestReadyCondition(t *testing.T) {
	tests := []struct {
		name         string
		outcome      outcome
		status       metav1.ConditionStatus
		reason       string
		messageParts []string
	}{
		{"registered", syncedOutcome, metav1.ConditionTrue, reasonSynced, []string{"ns_a/flow@1.0.0", "4 steps"}},
		{
			"invalid spec lists every problem with its field", invalidOutcome, metav1.ConditionFalse, reasonInvalidSpec,
			[]string{"spec.steps: dependency cycle: a → b → c → a; spec.inputSchema: is not a valid JSON Schema"},
		},
		{
			"conflict names the key and the other owner", conflictOutcome, metav1.ConditionFalse, reasonConflict,
			[]string{"ns_a/flow@1.0.0 is already registered by k8s:team/first"},
		},
		{
			"database error carries its text", databaseOutcome, metav1.ConditionFalse, reasonDatabaseUnavailable,
			[]string{"connection refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := readyCondition(tt.outcome)
			require.Equal(t, conditionReady, c.Type)
			require.Equal(t, tt.status, c.Status)
			require.Equal(t, tt.reason, c.Reason)
			require.Equal(t, int64(3), c.ObservedGeneration)
			for _, part := range tt.messageParts {
				require.Contains(t, c.Message, part)
			}
		})
	}
}

func TestReadyConditionTruncatesLongMessages(t *testing.T) {
	long := outcome{Err: &invalidSpecError{Problems: []template.Problem{
		{Field: "spec.steps", Message: "dependency cycle: " + strings.Repeat("étape → ", 10000)},
	}}}
	c := readyCondition(long)
	require.LessOrEqual(t, len(c.Message), maxConditionMessage)
	require.True(t, strings.HasSuffix(c.Message, "…"))
	require.True(t, strings.HasPrefix(c.Message, "spec.steps: dependency cycle: étape"))
}

func TestNextStatus(t *testing.T) {
	earlier := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(earlier.Add(time.Hour))
	syncedAt3 := nextStatus(workflowsv1alpha1.TaskTemplateStatus{}, syncedOutcome, earlier)

	tests := []struct {
		name     string
		cur      workflowsv1alpha1.TaskTemplateStatus
		outcome  outcome
		syncedAt *metav1.Time
		steps    int32
	}{
		{"first registration sets syncedAt", workflowsv1alpha1.TaskTemplateStatus{}, syncedOutcome, &now, 4},
		{"a resync that changed nothing keeps syncedAt", syncedAt3, syncedOutcome, &earlier, 4},
		{"a re-registration (database reset) moves syncedAt", syncedAt3, withChanged(syncedOutcome), &now, 4},
		{"a new generation moves syncedAt", syncedAt3, withGeneration(syncedOutcome, 4), &now, 4},
		{"a failure keeps what is registered", syncedAt3, databaseOutcome, &earlier, 4},
		{"an invalid spec keeps what is registered", syncedAt3, invalidOutcome, &earlier, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := nextStatus(tt.cur, tt.outcome, now)
			require.Equal(t, tt.outcome.Generation, next.ObservedGeneration)
			require.Equal(t, tt.syncedAt, next.SyncedAt)
			require.Equal(t, tt.steps, next.StepCount)
			require.Equal(t, testKey, *next.Registered)
			require.Len(t, next.Conditions, 1)
			require.Equal(t, readyCondition(tt.outcome).Reason, next.Conditions[0].Reason)
		})
	}
	require.Equal(t, syncedAt3, nextStatus(syncedAt3, syncedOutcome, now), "a resync that changed nothing writes nothing")
}

func TestResultFor(t *testing.T) {
	const resync = time.Minute
	res, err := resultFor(syncedOutcome, resync)
	require.NoError(t, err)
	require.Equal(t, resync, res.RequeueAfter, "resync repairs a reset database")

	res, err = resultFor(conflictOutcome, resync)
	require.NoError(t, err)
	require.Equal(t, resync, res.RequeueAfter, "the other owner may go away")

	res, err = resultFor(invalidOutcome, resync)
	require.ErrorIs(t, err, reconcile.TerminalError(nil), "no retry: only a new spec fixes it")
	require.Zero(t, res)

	res, err = resultFor(databaseOutcome, resync)
	require.Error(t, err)
	require.NotErrorIs(t, err, reconcile.TerminalError(nil), "backoff, then retry")
	require.Contains(t, err.Error(), "connection refused")
	require.Zero(t, res)
}

func TestEventFor(t *testing.T) {
	now := metav1.Now()
	synced := nextStatus(workflowsv1alpha1.TaskTemplateStatus{}, syncedOutcome, now)
	invalid := nextStatus(synced, invalidOutcome, now)
	created := syncedOutcome
	created.Created, created.Changed = true, true

	tests := []struct {
		name    string
		prev    workflowsv1alpha1.TaskTemplateStatus
		outcome outcome
		want    bool
		reason  string
		note    string
	}{
		{"first registration", workflowsv1alpha1.TaskTemplateStatus{}, created, true, reasonSynced, "registered ns_a/flow@1.0.0 with 4 steps"},
		{"resync without change is quiet", synced, syncedOutcome, false, "", ""},
		{"re-registration after a database reset", synced, created, true, reasonSynced, "registered ns_a/flow@1.0.0"},
		{"invalid spec is announced", synced, invalidOutcome, true, reasonInvalidSpec, "spec.steps: dependency cycle"},
		{"the same invalid spec again is quiet", invalid, invalidOutcome, false, "", ""},
		{"conflict is announced", synced, conflictOutcome, true, reasonConflict, "k8s:team/first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := eventFor(tt.prev, tt.outcome)
			require.Equal(t, tt.want, ok)
			require.Equal(t, tt.reason, ev.reason)
			require.Contains(t, ev.note, tt.note)
			require.LessOrEqual(t, len(ev.note), maxEventNote)
		})
	}
}

func TestResourceField(t *testing.T) {
	require.Equal(t, "spec.steps[1].dependsOn[0]", resourceField("flow", "steps[1].dependsOn[0]"))
	require.Equal(t, "spec.name", resourceField("flow", "name"))
	require.Equal(t, "metadata.name (used as spec.name, which is empty)", resourceField("", "name"))
	require.Equal(t, "spec", resourceField("", ""))
}

func withChanged(o outcome) outcome {
	o.Changed = true
	return o
}

func withGeneration(o outcome, generation int64) outcome {
	o.Generation = generation
	return o
}
