package controllers

import (
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/internal/dbsqlc"
)

// workflowSeq makes workflow namespace names unique across specs, which
// share one database.
var workflowSeq atomic.Int64

// uniqueWorkflow returns a workflow namespaceName that no other spec uses.
func uniqueWorkflow(base string) string {
	return fmt.Sprintf("%s_%d", base, workflowSeq.Add(1))
}

// newNamespace creates a fresh Kubernetes namespace for one spec. (envtest
// runs no namespace controller, so namespaces are not deleted afterwards.)
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tasktemplate-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// chainTemplate returns a TaskTemplate whose steps run one after another,
// each with the callable "test.<step>".
func chainTemplate(namespace, name, workflow string, steps ...string) *workflowsv1alpha1.TaskTemplate {
	tt := &workflowsv1alpha1.TaskTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: workflowsv1alpha1.TaskTemplateSpec{
			NamespaceName:    workflow,
			Name:             "flow",
			Version:          "1.0.0",
			IdentityStrategy: workflowsv1alpha1.IdentityAlwaysUnique,
		},
	}
	for i, step := range steps {
		s := workflowsv1alpha1.TaskTemplateStep{Name: step, Handler: workflowsv1alpha1.StepHandler{Callable: "test." + step}}
		if i > 0 {
			s.DependsOn = []string{steps[i-1]}
		}
		tt.Spec.Steps = append(tt.Spec.Steps, s)
	}
	return tt
}

// createTemplate creates tt and deletes it when the spec ends, waiting
// until the finalizer has let it go.
func createTemplate(tt *workflowsv1alpha1.TaskTemplate) {
	GinkgoHelper()
	Expect(k8sClient.Create(ctx, tt)).To(Succeed())
	DeferCleanup(deleteTemplate, client.ObjectKeyFromObject(tt))
}

// deleteTemplate deletes a TaskTemplate and waits until it is gone.
func deleteTemplate(key client.ObjectKey) {
	GinkgoHelper()
	tt := &workflowsv1alpha1.TaskTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, tt))).To(Succeed())
	Eventually(func() error {
		return k8sClient.Get(ctx, key, tt)
	}).Should(Satisfy(apierrors.IsNotFound), "the finalizer should let the resource go")
}

// updateTemplate applies change to the latest version of a TaskTemplate,
// retrying on write conflicts with the controller, and returns the new
// generation.
func updateTemplate(key client.ObjectKey, change func(*workflowsv1alpha1.TaskTemplate)) int64 {
	GinkgoHelper()
	tt := &workflowsv1alpha1.TaskTemplate{}
	Eventually(func() error {
		if err := k8sClient.Get(ctx, key, tt); err != nil {
			return err
		}
		change(tt)
		return k8sClient.Update(ctx, tt)
	}).Should(Succeed())
	return tt.Generation
}

// readyAt waits until the Ready condition of a TaskTemplate reports its
// current generation with reason, and returns the resource and condition.
func readyAt(key client.ObjectKey, reason string) (*workflowsv1alpha1.TaskTemplate, metav1.Condition) {
	GinkgoHelper()
	tt := &workflowsv1alpha1.TaskTemplate{}
	var ready metav1.Condition
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, key, tt)).To(Succeed())
		c := meta.FindStatusCondition(tt.Status.Conditions, conditionReady)
		g.Expect(c).NotTo(BeNil(), "no Ready condition yet")
		g.Expect(c.ObservedGeneration).To(Equal(tt.Generation))
		g.Expect(tt.Status.ObservedGeneration).To(Equal(tt.Generation))
		g.Expect(c.Reason).To(Equal(reason), c.Message)
		ready = *c
	}).Should(Succeed())
	return tt, ready
}

// storedTemplate reads a registered template from the database.
func storedTemplate(workflow, name, version string) (dbsqlc.TaskerTemplate, error) {
	return engine.Templates().Get(ctx, workflow, name, version)
}

// templateEvents lists the Events about one TaskTemplate.
func templateEvents(key client.ObjectKey) []eventsv1.Event {
	GinkgoHelper()
	list := &eventsv1.EventList{}
	Expect(k8sClient.List(ctx, list, client.InNamespace(key.Namespace))).To(Succeed())
	var about []eventsv1.Event
	for _, ev := range list.Items {
		if ev.Regarding.Kind == "TaskTemplate" && ev.Regarding.Name == key.Name {
			about = append(about, ev)
		}
	}
	return about
}

// eventsWithReason keeps the Events of one reason.
func eventsWithReason(events []eventsv1.Event, reason string) []eventsv1.Event {
	var out []eventsv1.Event
	for _, ev := range events {
		if ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}

// reasons returns the reason of each Event.
func reasons(events []eventsv1.Event) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = ev.Reason
	}
	return out
}

// controllerCounter reads one of controller-runtime's per-controller
// counters (such as controller_runtime_terminal_reconcile_errors_total)
// for the TaskTemplate controller.
func controllerCounter(name string) float64 {
	GinkgoHelper()
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, m := range family.GetMetric() {
			for _, label := range m.GetLabel() {
				if label.GetName() == "controller" && label.GetValue() == templateControllerName {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// quiet is how long the no-hot-loop specs watch a resource stay still:
// longer than one resync interval.
const quiet = testResync + time.Second
