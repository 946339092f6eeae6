package controllers

import (
	"fmt"
	"math/rand/v2"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
)

// Fixtures of the WorkerPool specs. Each spec works in a Kubernetes
// namespace of its own and in workflow namespaces of its own (the database
// is shared by the whole suite).

// poolTestSecret is the Secret the test pools reference.
const poolTestSecret = "tasker-db"

// newPoolNamespace creates a Kubernetes namespace for one spec.
func newPoolNamespace() string {
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "wp-"}}
	Expect(k8sClient.Create(ctx, namespace)).To(Succeed())
	return namespace.Name
}

// newPoolWorkflowNamespace returns a workflow namespace name no other spec
// uses.
func newPoolWorkflowNamespace(prefix string) string {
	return fmt.Sprintf("wp_%s_%08x", prefix, rand.Uint32())
}

// createPoolSecret creates the Secret poolTestSecret in namespace with data.
func createPoolSecret(namespace string, data map[string]string) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: poolTestSecret},
		StringData: data,
	}
	Expect(k8sClient.Create(ctx, secret)).To(Succeed())
}

// newTestPool returns a pool named workers in namespace, serving
// workflowNamespaces, with the database URL in poolTestSecret.
func newTestPool(namespace string, workflowNamespaces ...string) *workflowsv1alpha1.WorkerPool {
	return &workflowsv1alpha1.WorkerPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "workers"},
		Spec: workflowsv1alpha1.WorkerPoolSpec{
			Namespaces: workflowNamespaces,
			Database:   workflowsv1alpha1.WorkerPoolDatabase{SecretRef: workflowsv1alpha1.SecretKeyRef{Name: poolTestSecret}},
		},
	}
}

// createTestPool creates pool and deletes it when the spec ends, so that it
// stops being polled.
func createTestPool(pool *workflowsv1alpha1.WorkerPool) {
	Expect(k8sClient.Create(ctx, pool)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, pool))).To(Succeed())
	})
}

// getPool reads the pool with key, for Eventually.
func getPool(key client.ObjectKey) func(Gomega) *workflowsv1alpha1.WorkerPool {
	return func(g Gomega) *workflowsv1alpha1.WorkerPool {
		pool := &workflowsv1alpha1.WorkerPool{}
		g.Expect(k8sClient.Get(ctx, key, pool)).To(Succeed())
		return pool
	}
}

// getDeployment reads the Deployment with key, for Eventually.
func getDeployment(key client.ObjectKey) func(Gomega) *appsv1.Deployment {
	return func(g Gomega) *appsv1.Deployment {
		deployment := &appsv1.Deployment{}
		g.Expect(k8sClient.Get(ctx, key, deployment)).To(Succeed())
		return deployment
	}
}

// deploymentReplicas reads the replica count of the Deployment with key.
func deploymentReplicas(key client.ObjectKey) func(Gomega) int32 {
	return func(g Gomega) int32 {
		deployment := getDeployment(key)(g)
		g.Expect(deployment.Spec.Replicas).NotTo(BeNil())
		return *deployment.Spec.Replicas
	}
}

// poolReadyConditionOf reads the Ready condition of the pool with key; it fails
// until the condition describes the pool's current generation.
func poolReadyConditionOf(key client.ObjectKey) func(Gomega) metav1.Condition {
	return func(g Gomega) metav1.Condition {
		pool := getPool(key)(g)
		ready := meta.FindStatusCondition(pool.Status.Conditions, poolConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.ObservedGeneration).To(Equal(pool.Generation))
		return *ready
	}
}

// expectNoDeployment asserts that the Deployment with key does not appear
// for a while.
// expectDeploymentCollected waits for the garbage collector to delete the
// Deployment with key, then checks that nothing recreates it.
func expectDeploymentCollected(key client.ObjectKey) {
	Eventually(func() error {
		return k8sClient.Get(ctx, key, &appsv1.Deployment{})
	}).Should(Satisfy(apierrors.IsNotFound), "the garbage collector deletes the Deployment of a deleted pool")
	expectNoDeployment(key)
}

func expectNoDeployment(key client.ObjectKey) {
	Consistently(func() error {
		return k8sClient.Get(ctx, key, &appsv1.Deployment{})
	}, "1500ms").ShouldNot(Succeed())
}

// poolEventNotes returns the notes of the Events with reason about the pool
// with key.
func poolEventNotes(key client.ObjectKey, reason string) func(Gomega) []string {
	return func(g Gomega) []string {
		var events eventsv1.EventList
		g.Expect(k8sClient.List(ctx, &events, client.InNamespace(key.Namespace))).To(Succeed())
		var notes []string
		for _, event := range events.Items {
			if event.Regarding.Kind == "WorkerPool" && event.Regarding.Name == key.Name && event.Reason == reason {
				notes = append(notes, event.Note)
			}
		}
		return notes
	}
}

// poolReconciles returns how many reconciles the WorkerPool controller ran,
// from controller-runtime's metrics.
func poolReconciles() float64 {
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var total float64
	for _, family := range families {
		if family.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, metric := range family.GetMetric() {
			for _, label := range metric.GetLabel() {
				if label.GetName() == "controller" && label.GetValue() == poolControllerName {
					total += metric.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// expectNoHotLoop asserts that a blocked pool is not reconciled again and
// again: over 1.5 s, fewer reconciles than polling (every 300 ms) would run.
func expectNoHotLoop(key client.ObjectKey) {
	before := poolReconciles()
	resourceVersion := getPool(key)(Default).ResourceVersion
	Consistently(func(g Gomega) string { return getPool(key)(g).ResourceVersion }, "1500ms").
		Should(Equal(resourceVersion), "the status of a blocked pool is written once")
	Expect(poolReconciles()-before).To(BeNumerically("<", 3), "reconciles of the WorkerPool controller while the pool waits for a fix")
}
