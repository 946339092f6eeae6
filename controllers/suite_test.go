package controllers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration"
)

// The suite runs the manager with both controllers against a real API
// server (envtest) and a real PostgreSQL database; specs act and assert
// through k8sClient (a direct client, not the manager's cache) and the
// database, with Eventually.
var (
	ctx       context.Context
	cancel    context.CancelFunc
	testEnv   *envtest.Environment
	k8sClient client.Client
	testDB    *pgtest.Database
	engine    *orchestration.Engine
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

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: envtestAssets(),
	}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(workflowsv1alpha1.AddToScheme(scheme))
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
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
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// envtestAssets returns the directory with kube-apiserver and etcd:
// KUBEBUILDER_ASSETS when set (make test sets it), else what
// hack/envtest.sh prints (building the binaries on first use).
func envtestAssets() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	out, err := exec.Command(filepath.Join("..", "hack", "envtest.sh")).Output()
	Expect(err).NotTo(HaveOccurred(), "building the envtest binaries with hack/envtest.sh")
	return strings.TrimSpace(string(out))
}
