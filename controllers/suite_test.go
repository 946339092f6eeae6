package controllers

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/internal/kubeenv"
	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
)

// The suite runs the manager with both controllers against a real API
// server (envtest), with the garbage collector of a real
// kube-controller-manager, and a real PostgreSQL database; specs act and
// assert through k8sClient (an admin client, not the manager's cache) and the
// database, with Eventually.
//
// The manager runs as a user with only the RBAC rules that controller-gen
// generates from the controllers' markers (config/rbac/role.yaml), so a
// missing verb fails the specs as it would fail in a cluster.
var (
	ctx          context.Context
	cancel       context.CancelFunc
	controlPlane *kubeenv.ControlPlane
	k8sClient    client.Client
	testDB       *pgtest.Database
	engine       *orchestration.Engine
)

// Test timings: controllers poll and resync fast so specs finish quickly.
const (
	testResync       = 2 * time.Second
	testPoll         = 300 * time.Millisecond
	eventuallyLimit  = 30 * time.Second
	eventuallyPeriod = 50 * time.Millisecond
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(eventuallyLimit)
	SetDefaultEventuallyPollingInterval(eventuallyPeriod)
	RunSpecs(t, "Controller Suite")
}

func TestMain(m *testing.M) { pgtest.Main(m) }

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background()) //nolint:fatcontext // the suite's one context, shared by the specs

	testDB = pgtest.NewDatabase(GinkgoTB())
	engine = orchestration.NewEngine(testDB.Pool, orchestration.Config{ProcessID: "controller-suite"})

	var err error
	controlPlane, err = kubeenv.Start(ctx, kubeenv.Options{
		CRDDirectories:   []string{filepath.Join("..", "config", "crd", "bases")},
		GarbageCollector: true,
		Output:           GinkgoWriter,
	})
	Expect(err).NotTo(HaveOccurred())

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(workflowsv1alpha1.AddToScheme(scheme))
	k8sClient, err = client.New(controlPlane.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := ctrl.NewManager(managerConfig(), ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	Expect(err).NotTo(HaveOccurred())
	Expect(SetupTaskTemplateController(mgr, TaskTemplateOptions{
		Templates: engine.Templates(), ResyncInterval: testResync,
	})).To(Succeed())
	Expect(SetupWorkerPoolController(mgr, WorkerPoolOptions{
		Database: testDB.Pool, DefaultImage: "ghcr.io/taskerops/tasker:test", PollInterval: testPoll,
	})).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	cancel()
	if controlPlane != nil {
		Expect(controlPlane.Stop()).To(Succeed())
	}
})

// managerUser is the identity the suite's manager runs as.
const managerUser = "tasker-manager"

// managerConfig binds the generated ClusterRole (config/rbac/role.yaml) to a
// new user of no group and returns that user's client configuration.
func managerConfig() *rest.Config {
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	role := &rbacv1.ClusterRole{}
	Expect(yaml.UnmarshalStrict(data, role)).To(Succeed())
	Expect(role.Rules).NotTo(BeEmpty())
	Expect(k8sClient.Create(ctx, role)).To(Succeed())
	Expect(k8sClient.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: managerUser}},
	})).To(Succeed())
	cfg, err := controlPlane.AddUser(managerUser)
	Expect(err).NotTo(HaveOccurred())
	return cfg
}
