package controllers

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

// Input the API server accepts but the controller cannot use: each case
// gets a condition that says what is wrong, no Deployment (or an untouched
// one), and no retry loop; fixing the input reconciles at once.
var _ = Describe("WorkerPool controller with unusable input", func() {
	var key client.ObjectKey

	BeforeEach(func() {
		key = client.ObjectKey{Namespace: newPoolNamespace(), Name: "workers"}
	})

	It("reports a missing Secret, and creates the Deployment as soon as the Secret exists", func() {
		createTestPool(newTestPool(key.Namespace, newPoolWorkflowNamespace("nosecret")))

		Eventually(poolReadyConditionOf(key)).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", poolReasonSecretNotFound),
			HaveField("Message", "Secret "+key.Namespace+"/tasker-db (spec.database.secretRef.name) not found; "+
				`create it with the PostgreSQL connection URL under the key "url"`)))
		expectNoDeployment(key)
		expectNoHotLoop(key)

		createPoolSecret(key.Namespace, map[string]string{"url": "postgres://tasker@db/tasker"})
		Eventually(getDeployment(key)).ShouldNot(BeNil())
		Eventually(poolReadyConditionOf(key)).Should(HaveField("Reason", poolReasonProgressing))
	})

	It("reports a Secret without the key, and recovers when the key is added", func() {
		createPoolSecret(key.Namespace, map[string]string{"password": "hunter2"})
		createTestPool(newTestPool(key.Namespace, newPoolWorkflowNamespace("nokey")))

		Eventually(poolReadyConditionOf(key)).Should(And(
			HaveField("Reason", poolReasonSecretKeyNotFound),
			HaveField("Message", "Secret "+key.Namespace+`/tasker-db has no key "url" (spec.database.secretRef.key); its keys are [password]`)))
		expectNoDeployment(key)
		expectNoHotLoop(key)

		secret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: poolTestSecret}, secret)).To(Succeed())
		secret.StringData = map[string]string{"url": "postgres://tasker@db/tasker"}
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		Eventually(getDeployment(key)).ShouldNot(BeNil())
	})

	It("reports spec.env that overrides the operator's variables", func() {
		createPoolSecret(key.Namespace, map[string]string{"url": "postgres://tasker@db/tasker"})
		pool := newTestPool(key.Namespace, newPoolWorkflowNamespace("env"))
		pool.Spec.Env = []corev1.EnvVar{{Name: "TASKER_DATABASE_URL", Value: "postgres://elsewhere/db"}}
		createTestPool(pool)

		Eventually(poolReadyConditionOf(key)).Should(And(
			HaveField("Reason", poolReasonInvalidSpec),
			HaveField("Message", ContainSubstring("spec.env[0] sets TASKER_DATABASE_URL, which the operator sets itself"))))
		expectNoDeployment(key)
		expectNoHotLoop(key)
	})

	It("reports a Deployment the API server rejects, with the server's reason", func() {
		createPoolSecret(key.Namespace, map[string]string{"url": "postgres://tasker@db/tasker"})
		pool := newTestPool(key.Namespace, newPoolWorkflowNamespace("rejected"))
		// The CRD accepts any toleration; a Deployment's pod template needs
		// an empty value with the operator Exists.
		pool.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists, Value: "tasker"}}
		createTestPool(pool)

		Eventually(poolReadyConditionOf(key)).Should(And(
			HaveField("Reason", poolReasonDeploymentRejected),
			HaveField("Message", And(
				ContainSubstring("the API server rejected the worker Deployment"),
				ContainSubstring("spec.template.spec.tolerations[0]")))))
		expectNoDeployment(key)
		expectNoHotLoop(key)

		By("fixing the toleration")
		Eventually(func(g Gomega) {
			current := getPool(key)(g)
			current.Spec.Tolerations[0].Value = ""
			g.Expect(k8sClient.Update(ctx, current)).To(Succeed())
		}).Should(Succeed())
		Eventually(getDeployment(key)).ShouldNot(BeNil())
	})

	It("leaves alone a Deployment of the same name that it does not control", func() {
		createPoolSecret(key.Namespace, map[string]string{"url": "postgres://tasker@db/tasker"})
		labels := map[string]string{"app": "other"}
		foreign := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
				},
			},
		}
		Expect(k8sClient.Create(ctx, foreign)).To(Succeed())
		createTestPool(newTestPool(key.Namespace, newPoolWorkflowNamespace("conflict")))

		Eventually(poolReadyConditionOf(key)).Should(And(
			HaveField("Reason", poolReasonDeploymentConflict),
			HaveField("Message", "Deployment "+key.String()+" exists and is not controlled by this WorkerPool; "+
				"delete that Deployment or give the pool another name")))
		expectNoHotLoop(key)
		untouched := getDeployment(key)(Default)
		Expect(untouched.OwnerReferences).To(BeEmpty())
		Expect(untouched.Generation).To(Equal(int64(1)))

		By("taking over the name as soon as that Deployment is deleted, as the condition says")
		Expect(k8sClient.Delete(ctx, untouched)).To(Succeed())
		Eventually(func(g Gomega) []metav1.OwnerReference { return getDeployment(key)(g).OwnerReferences }).
			Should(ConsistOf(HaveField("Kind", "WorkerPool")))
		Eventually(poolReadyConditionOf(key)).ShouldNot(HaveField("Reason", poolReasonDeploymentConflict))
	})
})

var _ = Describe("WorkerPool controller when the database cannot be read", func() {
	It("holds the replica count, reports DatabaseUnavailable and recovers", func() {
		key := client.ObjectKey{Namespace: newPoolNamespace(), Name: "workers"}
		createPoolSecret(key.Namespace, map[string]string{"url": "postgres://tasker@db/tasker"})
		workflowNamespace := newPoolWorkflowNamespace("dbdown")
		pool := newTestPool(key.Namespace, workflowNamespace)
		pool.Spec.Autoscaling = &workflowsv1alpha1.WorkerPoolAutoscaling{
			MinReplicas: 1, MaxReplicas: 5, TargetStepsPerReplica: 2, ScaleDownDelaySeconds: new(int32(0)),
		}
		createTestPool(pool)
		registerWorkTemplate(ctx, GinkgoTB(), engine, workflowNamespace)
		createWork(ctx, GinkgoTB(), engine, workflowNamespace, 6)
		Eventually(deploymentReplicas(key)).Should(Equal(int32(3)))

		By("breaking the pool's queue table, so that measuring the work fails")
		queueTable := "pgmq.q_" + dispatch.StepQueue(workflowNamespace)
		_, err := testDB.Pool.Exec(ctx, "ALTER TABLE "+queueTable+" RENAME COLUMN vt TO vt_broken")
		Expect(err).NotTo(HaveOccurred())
		Eventually(poolReadyConditionOf(key)).Should(And(
			HaveField("Reason", poolReasonDatabaseUnavailable),
			HaveField("Message", And(
				HavePrefix("cannot read queue depth and in-flight steps, so the replica count is held: "),
				ContainSubstring("vt")))))
		Consistently(deploymentReplicas(key), "1500ms").Should(Equal(int32(3)),
			"unknown work scales neither to min nor anywhere else, even with a zero scale-down delay")

		By("repairing the table")
		_, err = testDB.Pool.Exec(ctx, "ALTER TABLE "+queueTable+" RENAME COLUMN vt_broken TO vt")
		Expect(err).NotTo(HaveOccurred())
		Eventually(poolReadyConditionOf(key)).Should(HaveField("Reason", poolReasonProgressing))
		Expect(getPool(key)(Default).Status.QueueDepth).To(Equal(int64(6)))
		Expect(deploymentReplicas(key)(Default)).To(Equal(int32(3)))
	})
})
