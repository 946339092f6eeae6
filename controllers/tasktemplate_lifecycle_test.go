package controllers

import (
	"fmt"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/orchestration"
)

// createTask creates a task of workflow/flow@version from an empty context.
func createTask(workflow, version string) uuid.UUID {
	GinkgoHelper()
	task, err := engine.CreateTask(ctx, orchestration.CreateTaskRequest{
		Namespace: workflow, Name: "flow", Version: version, Context: []byte(`{}`),
	})
	Expect(err).NotTo(HaveOccurred())
	return task.UUID
}

// taskCallables returns the callable of each step of a task, by step name,
// from the snapshot the task was created with.
func taskCallables(taskUUID uuid.UUID) map[string]string {
	GinkgoHelper()
	task, err := engine.GetTask(ctx, taskUUID)
	Expect(err).NotTo(HaveOccurred())
	rows, err := testDB.Pool.Query(ctx,
		"SELECT name, handler_callable FROM tasker.workflow_steps WHERE task_uuid = $1", taskUUID)
	Expect(err).NotTo(HaveOccurred())
	defer rows.Close()
	callables := map[string]string{}
	for rows.Next() {
		var name, callable string
		Expect(rows.Scan(&name, &callable)).To(Succeed())
		callables[name] = callable
	}
	Expect(rows.Err()).NotTo(HaveOccurred())
	Expect(callables).To(HaveLen(len(task.Steps)))
	return callables
}

var _ = Describe("TaskTemplate lifecycle", func() {
	var namespace string

	BeforeEach(func() {
		namespace = newNamespace()
	})

	It("gives new tasks an updated definition while earlier tasks keep theirs", func() {
		workflow := uniqueWorkflow("update")
		tt := chainTemplate(namespace, "update", workflow, "a", "b")
		createTemplate(tt)
		key := client.ObjectKeyFromObject(tt)
		first, _ := readyAt(key, reasonSynced)
		before := createTask(workflow, "1.0.0")

		generation := updateTemplate(key, func(tt *workflowsv1alpha1.TaskTemplate) {
			tt.Spec.Steps[1].Handler.Callable = "test.b_v2"
			tt.Spec.Steps = append(tt.Spec.Steps, workflowsv1alpha1.TaskTemplateStep{
				Name: "c", Handler: workflowsv1alpha1.StepHandler{Callable: "test.c"}, DependsOn: []string{"b"},
			})
		})
		Expect(generation).To(BeNumerically(">", first.Generation))
		updated, _ := readyAt(key, reasonSynced)
		Expect(updated.Status.StepCount).To(BeEquivalentTo(3))
		after := createTask(workflow, "1.0.0")

		Expect(taskCallables(before)).To(Equal(map[string]string{"a": "test.a", "b": "test.b"}))
		Expect(taskCallables(after)).To(Equal(map[string]string{"a": "test.a", "b": "test.b_v2", "c": "test.c"}))
		Eventually(func() int { return len(eventsWithReason(templateEvents(key), reasonSynced)) }).
			Should(Equal(2), "one Synced event per registration")
	})

	It("retires the template when the resource is deleted", func() {
		workflow := uniqueWorkflow("delete")
		tt := chainTemplate(namespace, "delete", workflow, "a")
		createTemplate(tt)
		key := client.ObjectKeyFromObject(tt)
		readyAt(key, reasonSynced)

		deleteTemplate(key)
		row, err := storedTemplate(workflow, "flow", "1.0.0")
		Expect(err).NotTo(HaveOccurred())
		Expect(row.Retired).To(BeTrue())
		_, err = engine.CreateTask(ctx, orchestration.CreateTaskRequest{Namespace: workflow, Name: "flow", Version: "1.0.0"})
		Expect(err).To(MatchError(orchestration.ErrTemplateRetired))
		Eventually(func() []string { return reasons(templateEvents(key)) }).Should(ContainElement(reasonRetired))
	})

	It("retires the previous version when spec.version changes", func() {
		workflow := uniqueWorkflow("version")
		tt := chainTemplate(namespace, "version", workflow, "a")
		createTemplate(tt)
		key := client.ObjectKeyFromObject(tt)
		readyAt(key, reasonSynced)

		updateTemplate(key, func(tt *workflowsv1alpha1.TaskTemplate) { tt.Spec.Version = "2.0.0" })
		got, _ := readyAt(key, reasonSynced)
		Expect(got.Status.Registered.Version).To(Equal("2.0.0"))
		v1, err := storedTemplate(workflow, "flow", "1.0.0")
		Expect(err).NotTo(HaveOccurred())
		Expect(v1.Retired).To(BeTrue())
		v2, err := storedTemplate(workflow, "flow", "2.0.0")
		Expect(err).NotTo(HaveOccurred())
		Expect(v2.Retired).To(BeFalse())
	})

	It("reports a Conflict naming the owner of the key, and takes the key over when that owner lets go", func() {
		workflow := uniqueWorkflow("conflict")
		first := chainTemplate(namespace, "first", workflow, "a", "b")
		createTemplate(first)
		readyAt(client.ObjectKeyFromObject(first), reasonSynced)

		second := chainTemplate(namespace, "second", workflow, "x")
		createTemplate(second)
		secondKey := client.ObjectKeyFromObject(second)
		_, ready := readyAt(secondKey, reasonConflict)
		Expect(ready.Message).To(ContainSubstring(workflow + "/flow@1.0.0 is already registered by k8s:" + namespace + "/first"))
		Eventually(func() []string { return reasons(templateEvents(secondKey)) }).Should(ContainElement(reasonConflict))
		row, err := storedTemplate(workflow, "flow", "1.0.0")
		Expect(err).NotTo(HaveOccurred())
		Expect(row.Owner).To(Equal("k8s:"+namespace+"/first"), "the loser must not change the template")

		deleteTemplate(client.ObjectKeyFromObject(first))
		got, _ := readyAt(secondKey, reasonSynced)
		Expect(got.Status.StepCount).To(BeEquivalentTo(1))
		row, err = storedTemplate(workflow, "flow", "1.0.0")
		Expect(err).NotTo(HaveOccurred())
		Expect(row.Owner).To(Equal("k8s:" + namespace + "/second"))
		Expect(row.Retired).To(BeFalse())
	})

	It("registers the template again after the database lost it", func() {
		workflow := uniqueWorkflow("reset")
		tt := chainTemplate(namespace, "reset", workflow, "a", "b")
		createTemplate(tt)
		readyAt(client.ObjectKeyFromObject(tt), reasonSynced)

		// What a reset leaves of this workflow namespace: nothing. (No task
		// was created, so no row refers to the template.)
		_, err := testDB.Pool.Exec(ctx, "DELETE FROM tasker.templates WHERE namespace_name = $1", workflow)
		Expect(err).NotTo(HaveOccurred())
		_, err = testDB.Pool.Exec(ctx, "DELETE FROM tasker.namespaces WHERE name = $1", workflow)
		Expect(err).NotTo(HaveOccurred())
		_, err = testDB.Pool.Exec(ctx, "SELECT pgmq.drop_queue($1)", workflow+"_queue")
		Expect(err).NotTo(HaveOccurred())
		_, err = storedTemplate(workflow, "flow", "1.0.0")
		Expect(err).To(MatchError(orchestration.ErrNotFound))

		Eventually(func() error {
			_, err := storedTemplate(workflow, "flow", "1.0.0")
			return err
		}).WithTimeout(3 * testResync).Should(Succeed())
		task := createTask(workflow, "1.0.0")
		Expect(taskCallables(task)).To(Equal(map[string]string{"a": "test.a", "b": "test.b"}))
	})
})

// outageMessage is the error the simulated outage raises.
const outageMessage = "simulated outage"

// simulateOutage makes every write of the templates of one workflow
// namespace fail in the database, as an unreachable database would, until
// the returned function is called (at the latest when the spec ends).
func simulateOutage(workflow string) (restore func()) {
	GinkgoHelper()
	function := "tasker.outage_" + workflow
	_, err := testDB.Pool.Exec(ctx, fmt.Sprintf(`CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql
		AS $$ BEGIN RAISE EXCEPTION '%s'; END $$`, function, outageMessage))
	Expect(err).NotTo(HaveOccurred())
	_, err = testDB.Pool.Exec(ctx, fmt.Sprintf(`CREATE TRIGGER outage_%s BEFORE INSERT OR UPDATE ON tasker.templates
		FOR EACH ROW WHEN (NEW.namespace_name = '%s') EXECUTE FUNCTION %s()`, workflow, workflow, function))
	Expect(err).NotTo(HaveOccurred())
	restore = func() {
		_, err := testDB.Pool.Exec(ctx, fmt.Sprintf("DROP FUNCTION IF EXISTS %s() CASCADE", function))
		Expect(err).NotTo(HaveOccurred())
	}
	DeferCleanup(restore)
	return restore
}

var _ = Describe("TaskTemplate controller when the database fails", func() {
	var namespace string

	BeforeEach(func() {
		namespace = newNamespace()
	})

	It("reports DatabaseUnavailable and retries with backoff until the database answers", func() {
		workflow := uniqueWorkflow("outage")
		restore := simulateOutage(workflow)
		tt := chainTemplate(namespace, "outage", workflow, "a", "b")
		createTemplate(tt)
		key := client.ObjectKeyFromObject(tt)

		got, ready := readyAt(key, reasonDatabaseUnavailable)
		Expect(ready.Message).To(ContainSubstring(outageMessage))
		Expect(got.Finalizers).To(ContainElement(templateFinalizer))
		Expect(got.Status.Registered).To(BeNil())
		Eventually(func() []string { return reasons(templateEvents(key)) }).Should(ContainElement(reasonDatabaseUnavailable))

		restore()
		got, _ = readyAt(key, reasonSynced)
		Expect(got.Status.StepCount).To(BeEquivalentTo(2))
		_, err := storedTemplate(workflow, "flow", "1.0.0")
		Expect(err).NotTo(HaveOccurred())
	})

	It("keeps a deleted resource until its template is retired", func() {
		workflow := uniqueWorkflow("outage_delete")
		tt := chainTemplate(namespace, "outage-delete", workflow, "a")
		createTemplate(tt)
		key := client.ObjectKeyFromObject(tt)
		readyAt(key, reasonSynced)

		restore := simulateOutage(workflow)
		Expect(k8sClient.Delete(ctx, tt)).To(Succeed())
		readyAt(key, reasonDatabaseUnavailable)
		Consistently(func(g Gomega) {
			now := &workflowsv1alpha1.TaskTemplate{}
			g.Expect(k8sClient.Get(ctx, key, now)).To(Succeed(), "the finalizer must hold the resource")
			g.Expect(meta.FindStatusCondition(now.Status.Conditions, conditionReady).Reason).To(Equal(reasonDatabaseUnavailable))
			row, err := storedTemplate(workflow, "flow", "1.0.0")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(row.Retired).To(BeFalse())
		}, "1s", testPoll).Should(Succeed())

		restore()
		deleteTemplate(key)
		row, err := storedTemplate(workflow, "flow", "1.0.0")
		Expect(err).NotTo(HaveOccurred())
		Expect(row.Retired).To(BeTrue())
	})
})
