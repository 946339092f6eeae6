package controllers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/orchestration/template"
)

// sampleTemplates reads the TaskTemplates of config/samples.
func sampleTemplates() []*workflowsv1alpha1.TaskTemplate {
	GinkgoHelper()
	paths, err := filepath.Glob(filepath.Join("..", "config", "samples", "*.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var samples []*workflowsv1alpha1.TaskTemplate
	for _, path := range paths {
		data, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred())
		tt := &workflowsv1alpha1.TaskTemplate{}
		Expect(yaml.Unmarshal(data, tt)).To(Succeed(), path)
		if tt.Kind == "TaskTemplate" {
			samples = append(samples, tt)
		}
	}
	return samples
}

var _ = Describe("TaskTemplate controller", func() {
	var namespace string

	BeforeEach(func() {
		namespace = newNamespace()
		panics := controllerCounter("controller_runtime_reconcile_panics_total")
		DeferCleanup(func() {
			Expect(controllerCounter("controller_runtime_reconcile_panics_total")).To(Equal(panics), "a reconcile panicked")
		})
	})

	It("registers every sample TaskTemplate in the database", func() {
		samples := sampleTemplates()
		Expect(samples).To(HaveLen(5))
		for _, tt := range samples {
			tt.Namespace = namespace
			createTemplate(tt)
		}
		for _, sample := range samples {
			tt, ready := readyAt(client.ObjectKeyFromObject(sample), reasonSynced)
			Expect(tt.Finalizers).To(ContainElement(templateFinalizer))
			Expect(tt.Status.StepCount).To(BeEquivalentTo(len(sample.Spec.Steps)))
			Expect(tt.Status.SyncedAt).NotTo(BeNil())
			Expect(*tt.Status.Registered).To(Equal(specKey(tt)))
			Expect(ready.Message).To(ContainSubstring(keyString(specKey(tt))))

			row, err := storedTemplate(sample.Spec.NamespaceName, sample.Spec.Name, sample.Spec.Version)
			Expect(err).NotTo(HaveOccurred())
			Expect(row.Retired).To(BeFalse())
			Expect(row.Owner).To(Equal("k8s:" + namespace + "/" + sample.Name))
			var def template.Definition
			Expect(json.Unmarshal(row.Definition, &def)).To(Succeed())
			Expect(def.Steps).To(HaveLen(len(sample.Spec.Steps)))
			Expect(def.Fingerprint()).To(Equal(row.Fingerprint))

			var stepRows int
			Expect(testDB.Pool.QueryRow(ctx, "SELECT count(*) FROM tasker.template_steps WHERE template_id = $1",
				row.TemplateID).Scan(&stepRows)).To(Succeed())
			Expect(stepRows).To(Equal(len(sample.Spec.Steps)))
		}
	})

	DescribeTable("refuses at admission what the schema and CEL rules can check",
		func(change func(*workflowsv1alpha1.TaskTemplate), wantParts ...string) {
			tt := chainTemplate(namespace, "refused", uniqueWorkflow("refused"), "a", "b", "c")
			change(tt)
			err := k8sClient.Create(ctx, tt)
			Expect(err).To(HaveOccurred())
			for _, part := range wantParts {
				Expect(err.Error()).To(ContainSubstring(part))
			}
		},
		Entry("an unknown dependency", func(tt *workflowsv1alpha1.TaskTemplate) {
			tt.Spec.Steps[2].DependsOn = []string{"nowhere"}
		}, "spec.steps", "step c depends on a step that does not exist"),
		Entry("duplicate step names", func(tt *workflowsv1alpha1.TaskTemplate) {
			tt.Spec.Steps[2].Name = "a"
			tt.Spec.Steps[2].DependsOn = nil
		}, "spec.steps[2]", "Duplicate value", `"name":"a"`),
		Entry("a version that is not semver", func(tt *workflowsv1alpha1.TaskTemplate) {
			tt.Spec.Version = "1.0"
		}, "spec.version", `"1.0"`),
		Entry("a step that depends on itself", func(tt *workflowsv1alpha1.TaskTemplate) {
			tt.Spec.Steps[1].DependsOn = []string{"b"}
		}, "spec.steps[1]", "must not depend on itself"),
	)

	DescribeTable("reports in the Ready condition what only the controller can check",
		func(name string, change func(*workflowsv1alpha1.TaskTemplate), wantParts ...string) {
			tt := chainTemplate(namespace, name, uniqueWorkflow("invalid"), "a", "b", "c")
			change(tt)
			createTemplate(tt)
			key := client.ObjectKeyFromObject(tt)
			got, ready := readyAt(key, reasonInvalidSpec)
			for _, part := range wantParts {
				Expect(ready.Message).To(ContainSubstring(part))
			}
			Expect(got.Status.Registered).To(BeNil())
			_, err := storedTemplate(tt.Spec.NamespaceName, "flow", "1.0.0")
			Expect(err).To(HaveOccurred(), "an invalid spec must not reach the database")
			Eventually(func() []string { return reasons(eventsWithReason(templateEvents(key), reasonInvalidSpec)) }).
				Should(ConsistOf(reasonInvalidSpec))
		},
		Entry("a dependency cycle, with its path", "cycle", func(tt *workflowsv1alpha1.TaskTemplate) {
			tt.Spec.Steps[0].DependsOn = []string{"c"}
		}, "spec.steps: dependency cycle: a → c → b → a"),
		Entry("an input schema that is not a JSON Schema", "bad-schema", func(tt *workflowsv1alpha1.TaskTemplate) {
			tt.Spec.InputSchema = &apiextensionsv1.JSON{Raw: []byte(`{"type": 5}`)}
		}, "spec.inputSchema: is not a valid JSON Schema"),
		Entry("a metadata.name too long for a template name", strings.Repeat("n", 130), func(tt *workflowsv1alpha1.TaskTemplate) {
			tt.Spec.Name = ""
		}, "metadata.name (used as spec.name, which is empty): must be at most 128 bytes, got 130"),
	)

	It("does not retry an invalid spec in a loop", func() {
		terminal := controllerCounter("controller_runtime_terminal_reconcile_errors_total")
		tt := chainTemplate(namespace, "loop", uniqueWorkflow("loop"), "a", "b")
		tt.Spec.Steps[0].DependsOn = []string{"b"}
		createTemplate(tt)
		key := client.ObjectKeyFromObject(tt)
		got, _ := readyAt(key, reasonInvalidSpec)
		Eventually(func() float64 {
			return controllerCounter("controller_runtime_terminal_reconcile_errors_total") - terminal
		}).Should(BeNumerically("==", 1))

		Consistently(func(g Gomega) {
			now := &workflowsv1alpha1.TaskTemplate{}
			g.Expect(k8sClient.Get(ctx, key, now)).To(Succeed())
			g.Expect(now.ResourceVersion).To(Equal(got.ResourceVersion), "the status is written once")
			g.Expect(controllerCounter("controller_runtime_terminal_reconcile_errors_total")-terminal).
				To(BeNumerically("==", 1), "one reconcile, no retries")
		}, quiet, testPoll).Should(Succeed())
		invalid := eventsWithReason(templateEvents(key), reasonInvalidSpec)
		Expect(invalid).To(HaveLen(1))
		Expect(invalid[0].Series).To(BeNil(), "the event was emitted once")
	})
})
