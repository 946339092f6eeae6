package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/orchestration/dispatch"
	"github.com/taskerops/tasker/orchestration/queue"
)

var _ = Describe("WorkerPool controller", func() {
	var key client.ObjectKey

	BeforeEach(func() {
		key = client.ObjectKey{Namespace: newPoolNamespace(), Name: "workers"}
		createPoolSecret(key.Namespace, map[string]string{"url": "postgres://tasker@db/tasker"})
	})

	It("runs the pool as a Deployment of tasker worker, and reports its readiness", func() {
		wfB, wfA := newPoolWorkflowNamespace("b"), newPoolWorkflowNamespace("a")
		pool := newTestPool(key.Namespace, wfB, wfA)
		pool.Spec.Image = "example.com/handlers:1.0"
		pool.Spec.Replicas = new(int32(2))
		pool.Spec.Concurrency = 4
		pool.Spec.Env = []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}}
		pool.Spec.Resources = &corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		}
		pool.Spec.NodeSelector = map[string]string{"pool": "workers"}
		pool.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "tasker", Effect: corev1.TaintEffectNoSchedule}}
		pool.Spec.ServiceAccountName = "tasker-worker"
		createTestPool(pool)

		var deployment *appsv1.Deployment
		Eventually(func(g Gomega) { deployment = getDeployment(key)(g) }).Should(Succeed())
		Expect(*deployment.Spec.Replicas).To(Equal(int32(2)))
		Expect(deployment.Spec.Selector.MatchLabels).To(Equal(map[string]string{
			"app.kubernetes.io/name": "tasker-worker", "app.kubernetes.io/instance": "workers",
		}))
		Expect(deployment.Spec.Template.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "tasker-operator"))
		Expect(deployment.OwnerReferences).To(ConsistOf(metav1.OwnerReference{
			APIVersion: "workflows.tasker.dev/v1alpha1", Kind: "WorkerPool", Name: "workers", UID: pool.UID,
			Controller: new(true), BlockOwnerDeletion: new(true),
		}))

		podSpec := deployment.Spec.Template.Spec
		Expect(podSpec.TerminationGracePeriodSeconds).To(HaveValue(Equal(int64(45))))
		Expect(podSpec.NodeSelector).To(Equal(pool.Spec.NodeSelector))
		Expect(podSpec.Tolerations).To(Equal(pool.Spec.Tolerations))
		Expect(podSpec.ServiceAccountName).To(Equal("tasker-worker"))
		Expect(podSpec.Containers).To(HaveLen(1))
		worker := podSpec.Containers[0]
		Expect(worker.Name).To(Equal("worker"))
		Expect(worker.Image).To(Equal("example.com/handlers:1.0"))
		Expect(worker.Args).To(Equal([]string{"worker", "--namespaces=" + wfA + "," + wfB, "--concurrency=4", "--health-listen=:8081"}))
		Expect(worker.Env).To(HaveLen(3))
		Expect(worker.Env[0].Name).To(Equal("TASKER_DATABASE_URL"))
		Expect(worker.Env[0].ValueFrom.SecretKeyRef).To(HaveValue(And(
			HaveField("Name", poolTestSecret), HaveField("Key", "url"))))
		Expect(worker.Env[1].Name).To(Equal("TASKER_WORKER_ID"))
		Expect(worker.Env[1].ValueFrom.FieldRef.FieldPath).To(Equal("metadata.name"))
		Expect(worker.Env[2]).To(Equal(corev1.EnvVar{Name: "LOG_LEVEL", Value: "debug"}))
		Expect(worker.Ports).To(ConsistOf(HaveField("ContainerPort", int32(8081))))
		Expect(worker.LivenessProbe.HTTPGet).To(HaveValue(And(HaveField("Path", "/healthz"), HaveField("Port.IntVal", int32(8081)))))
		Expect(worker.ReadinessProbe.HTTPGet).To(HaveValue(And(HaveField("Path", "/readyz"), HaveField("Port.IntVal", int32(8081)))))
		Expect(equality.Semantic.DeepEqual(worker.Resources, *pool.Spec.Resources)).To(BeTrue(), "resources: %v", worker.Resources)
		security := worker.SecurityContext
		Expect(security.RunAsNonRoot).To(HaveValue(BeTrue()))
		Expect(security.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
		Expect(security.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
		Expect(security.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
		Expect(security.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))

		By("reporting the Deployment as progressing while no replica is ready")
		Eventually(poolReadyConditionOf(key)).Should(HaveField("Reason", poolReasonProgressing))
		status := getPool(key)(Default).Status
		Expect(status.DesiredReplicas).To(Equal(int32(2)))
		Expect(status.Selector).To(Equal("app.kubernetes.io/instance=workers,app.kubernetes.io/name=tasker-worker"))

		By("following the Deployment's status (envtest runs no Deployment controller: the spec writes it)")
		deployment = getDeployment(key)(Default)
		deployment.Status = appsv1.DeploymentStatus{
			ObservedGeneration: deployment.Generation, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
		}
		Expect(k8sClient.Status().Update(ctx, deployment)).To(Succeed())
		Eventually(poolReadyConditionOf(key)).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", poolReasonReplicasReady),
			HaveField("Message", "2 of 2 replicas ready")))
		Expect(getPool(key)(Default).Status).To(And(HaveField("Replicas", int32(2)), HaveField("ReadyReplicas", int32(2))))
	})

	It("rolls the Deployment when the spec changes", func() {
		pool := newTestPool(key.Namespace, newPoolWorkflowNamespace("roll"))
		pool.Spec.Concurrency = 4
		createTestPool(pool)
		Eventually(func(g Gomega) []string { return getDeployment(key)(g).Spec.Template.Spec.Containers[0].Args }).
			Should(ContainElement("--concurrency=4"))
		before := getDeployment(key)(Default)
		Consistently(func(g Gomega) string { return getDeployment(key)(g).ResourceVersion }, "1s").
			Should(Equal(before.ResourceVersion), "polling the pool (every 300ms) re-applies the Deployment without writing it")

		Eventually(func(g Gomega) {
			current := getPool(key)(g)
			current.Spec.Concurrency = 8
			g.Expect(k8sClient.Update(ctx, current)).To(Succeed())
		}).Should(Succeed())

		Eventually(func(g Gomega) []string { return getDeployment(key)(g).Spec.Template.Spec.Containers[0].Args }).
			Should(ContainElement("--concurrency=8"))
		after := getDeployment(key)(Default)
		Expect(after.Generation).To(BeNumerically(">", before.Generation), "a new pod template is a new rollout")
		Expect(after.Spec.Replicas).To(Equal(before.Spec.Replicas))
		Eventually(func(g Gomega) int64 { return getPool(key)(g).Status.ObservedGeneration }).Should(Equal(int64(2)))
	})

	It("scales through the scale subresource when autoscaling is off", func() {
		pool := newTestPool(key.Namespace, newPoolWorkflowNamespace("scale"))
		createTestPool(pool) // replicas defaults to 1
		Eventually(deploymentReplicas(key)).Should(Equal(int32(1)))

		// The controller writes the pool too (status, observed generation),
		// so an update can meet a newer resourceVersion: read and write
		// again until one goes through (the usual retry on conflict).
		setScale := func(replicas int32) {
			Eventually(func(g Gomega) {
				scale := &autoscalingv1.Scale{}
				g.Expect(k8sClient.SubResource("scale").Get(ctx, pool, scale)).To(Succeed())
				scale.Spec.Replicas = replicas
				g.Expect(k8sClient.SubResource("scale").Update(ctx, pool, client.WithSubResourceBody(scale))).To(Succeed())
			}).Should(Succeed())
		}
		setScale(3)
		Eventually(deploymentReplicas(key)).Should(Equal(int32(3)))
		Expect(getPool(key)(Default).Spec.Replicas).To(HaveValue(Equal(int32(3))))
		Eventually(poolEventNotes(key, poolEventScaledUp)).Should(ContainElements(
			"Scaled from 0 to 1 replicas: spec.replicas is 1", "Scaled from 1 to 3 replicas: spec.replicas is 3"))

		By("reporting the selector and the desired count through the scale subresource")
		Eventually(func(g Gomega) autoscalingv1.ScaleStatus {
			scale := &autoscalingv1.Scale{}
			g.Expect(k8sClient.SubResource("scale").Get(ctx, pool, scale)).To(Succeed())
			return scale.Status
		}).Should(HaveField("Selector", "app.kubernetes.io/instance=workers,app.kubernetes.io/name=tasker-worker"))

		By("scaling down at once: the delay is the autoscaler's")
		setScale(0)
		Eventually(deploymentReplicas(key)).Should(BeZero())
		Eventually(poolEventNotes(key, poolEventScaledDown)).Should(ContainElement("Scaled from 3 to 0 replicas: spec.replicas is 0"))
	})

	It("makes the pool the controlling owner of its Deployment, for the garbage collector", func() {
		pool := newTestPool(key.Namespace, newPoolWorkflowNamespace("gc"))
		createTestPool(pool)
		Eventually(func(g Gomega) []metav1.OwnerReference { return getDeployment(key)(g).OwnerReferences }).
			Should(ConsistOf(And(
				HaveField("Kind", "WorkerPool"), HaveField("Name", "workers"), HaveField("UID", pool.UID),
				HaveField("Controller", HaveValue(BeTrue())), HaveField("BlockOwnerDeletion", HaveValue(BeTrue())))))

		By("deleting the pool in the foreground: the garbage collector deletes the Deployment, then the pool")
		Expect(k8sClient.Delete(ctx, pool, client.PropagationPolicy(metav1.DeletePropagationForeground))).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, key, &workflowsv1alpha1.WorkerPool{})
		}).Should(Satisfy(apierrors.IsNotFound), "the pool goes once its Deployment is gone")
		expectDeploymentCollected(key)
	})

	It("has its Deployment garbage-collected after a plain (background) delete", func() {
		pool := newTestPool(key.Namespace, newPoolWorkflowNamespace("gc_background"))
		createTestPool(pool)
		Eventually(getDeployment(key)).Should(HaveField("OwnerReferences", HaveLen(1)))
		Eventually(getPool(key)).Should(HaveField("Finalizers", ConsistOf(poolFinalizer)),
			"the finalizer keeps a deleted pool until the controller has stopped applying its Deployment")

		Expect(k8sClient.Delete(ctx, pool)).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, key, &workflowsv1alpha1.WorkerPool{})
		}).Should(Satisfy(apierrors.IsNotFound))
		expectDeploymentCollected(key)
	})
})

var _ = Describe("WorkerPool autoscaling", func() {
	const scaleDownDelay = 2 * time.Second

	It("follows the work on the pool's queues, and returns to min after the delay", func() {
		key := client.ObjectKey{Namespace: newPoolNamespace(), Name: "workers"}
		createPoolSecret(key.Namespace, map[string]string{"url": "postgres://tasker@db/tasker"})
		workflowNamespace := newPoolWorkflowNamespace("scaling")
		pool := newTestPool(key.Namespace, workflowNamespace, newPoolWorkflowNamespace("idle"))
		pool.Spec.Autoscaling = &workflowsv1alpha1.WorkerPoolAutoscaling{
			MinReplicas: 0, MaxReplicas: 5, TargetStepsPerReplica: 2,
			ScaleDownDelaySeconds: new(int32(scaleDownDelay / time.Second)),
		}
		createTestPool(pool)
		status := func(g Gomega) workflowsv1alpha1.WorkerPoolStatus { return getPool(key)(g).Status }

		By("running no worker while there is no work (the queues do not even exist yet)")
		Eventually(deploymentReplicas(key)).Should(BeZero())
		Eventually(status).Should(And(
			HaveField("ObservedGeneration", int64(1)), HaveField("DesiredReplicas", int32(0)),
			HaveField("QueueDepth", int64(0)), HaveField("InFlightSteps", int64(0))))

		By("scaling up from zero when 5 steps are queued: ceil(5/2) = 3")
		registerWorkTemplate(ctx, GinkgoTB(), engine, workflowNamespace)
		createWork(ctx, GinkgoTB(), engine, workflowNamespace, 5)
		Eventually(deploymentReplicas(key)).Should(Equal(int32(3)))
		Eventually(status).Should(And(HaveField("QueueDepth", int64(5)), HaveField("DesiredReplicas", int32(3))))
		Eventually(poolEventNotes(key, poolEventScaledUp)).Should(ContainElement(
			HaveSuffix("to 3 replicas: 5 steps of work (5 queued, 0 in flight) at 2 per replica, within [0, 5]")))

		By("stopping at maxReplicas when 13 steps are queued: ceil(13/2) = 7 > 5")
		createWork(ctx, GinkgoTB(), engine, workflowNamespace, 8)
		Eventually(deploymentReplicas(key)).Should(Equal(int32(5)))
		Eventually(status).Should(HaveField("QueueDepth", int64(13)))
		Eventually(poolEventNotes(key, poolEventScaledUp)).Should(ContainElement(ContainSubstring(" to 5 replicas: ")))
		Consistently(deploymentReplicas(key), "600ms").Should(Equal(int32(5)))

		By("counting a claimed step as in flight instead of queued")
		executor, claims := claimWork(ctx, GinkgoTB(), testDB.Pool, workflowNamespace, 1)
		Eventually(status).Should(And(HaveField("QueueDepth", int64(12)), HaveField("InFlightSteps", int64(1))))

		By("keeping the replicas for scaleDownDelaySeconds after the last scale once the work is gone")
		lastScaleUp := getPool(key)(Default).Status.LastScaleTime
		Expect(lastScaleUp).NotTo(BeNil())
		Expect(executor.Release(ctx, claims[0])).To(Succeed())
		_, err := queue.New().Purge(ctx, testDB.Pool, dispatch.StepQueue(workflowNamespace))
		Expect(err).NotTo(HaveOccurred())
		Eventually(status).Should(And(HaveField("QueueDepth", int64(0)), HaveField("InFlightSteps", int64(0))))
		if hold := time.Until(lastScaleUp.Add(scaleDownDelay)) - 250*time.Millisecond; hold > 0 {
			Consistently(deploymentReplicas(key), hold).Should(Equal(int32(5)))
		}

		By("returning to minReplicas once the delay has passed")
		Eventually(deploymentReplicas(key)).Should(BeZero())
		Eventually(status).Should(HaveField("DesiredReplicas", int32(0)))
		lastScaleDown := getPool(key)(Default).Status.LastScaleTime
		Expect(lastScaleDown.Time).To(BeTemporally(">=", lastScaleUp.Add(scaleDownDelay)))
		Eventually(poolEventNotes(key, poolEventScaledDown)).Should(ConsistOf(
			"Scaled from 5 to 0 replicas: 0 steps of work (0 queued, 0 in flight) at 2 per replica, within [0, 5]"))
	})
})
