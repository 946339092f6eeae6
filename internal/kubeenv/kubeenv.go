// Package kubeenv runs a local Kubernetes control plane for tests and for
// `tasker dev`: the envtest kube-apiserver and etcd from
// sigs.k8s.io/controller-runtime/pkg/envtest, with the Tasker CRDs installed
// and, on request, the garbage collector of a kube-controller-manager, which
// envtest alone does not run.
//
// The binaries come from KUBEBUILDER_ASSETS or from hack/envtest.sh, which
// builds them from Go modules once per version (see Assets).
package kubeenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AssetsEnv names the directory holding kube-apiserver, etcd and
// kube-controller-manager, as envtest reads it.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Binaries are the programs hack/envtest.sh builds into the assets directory.
var Binaries = []string{"kube-apiserver", "etcd", "kube-controller-manager"}

// Assets returns the directory with the control plane binaries: $KUBEBUILDER_ASSETS
// when set, else what hack/envtest.sh prints, found in the working directory or
// one of its parents (the script builds the binaries on first use, which takes
// minutes; its progress goes to progress).
func Assets(ctx context.Context, progress io.Writer) (string, error) {
	if dir := os.Getenv(AssetsEnv); dir != "" {
		return dir, checkAssets(dir)
	}
	script, err := findUp(filepath.Join("hack", "envtest.sh"))
	if err != nil {
		return "", fmt.Errorf("kubeenv: %s is not set and %w; run `make envtest` in the tasker repository and set %s to the directory it prints",
			AssetsEnv, err, AssetsEnv)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, script)
	cmd.Stdout = &out
	cmd.Stderr = progress
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kubeenv: building the control plane with %s: %w", script, err)
	}
	dir := strings.TrimSpace(out.String())
	return dir, checkAssets(dir)
}

func checkAssets(dir string) error {
	for _, bin := range Binaries {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil { //nolint:gosec // the caller names the assets directory on purpose
			return fmt.Errorf("kubeenv: %s is missing from the control plane binaries in %s (built by hack/envtest.sh): %w", bin, dir, err)
		}
	}
	return nil
}

// findUp returns the absolute path of rel in the working directory or the
// nearest parent that has it.
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		candidate := filepath.Join(dir, rel)
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s in the working directory or its parents", rel)
		}
		dir = parent
	}
}

// RepoPath returns the absolute path of rel (e.g. "config/crd/bases") in the
// tasker repository that holds the working directory.
func RepoPath(rel string) (string, error) {
	return findUp(rel)
}

// Options configure Start.
type Options struct {
	// Assets is the directory with the binaries; empty means Assets().
	Assets string
	// CRDDirectories are installed before Start returns; typically the
	// repository's config/crd/bases.
	CRDDirectories []string
	// GarbageCollector also runs kube-controller-manager with only its
	// garbage collector, so that owner references take effect.
	GarbageCollector bool
	// Output receives the control plane's own logs (kube-controller-manager's);
	// nil discards them.
	Output io.Writer
}

// ControlPlane is a running local API server.
type ControlPlane struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config

	env        *envtest.Environment
	dir        string
	gc         *exec.Cmd
	gcDone     chan struct{} // closed when the garbage collector has exited
	stopOnce   sync.Once
	stopResult error
}

// Start runs kube-apiserver and etcd (a few seconds), installs the CRDs, and
// starts the garbage collector when asked. Stop the control plane with Stop.
func Start(ctx context.Context, o Options) (*ControlPlane, error) {
	if o.Assets == "" {
		dir, err := Assets(ctx, o.Output)
		if err != nil {
			return nil, err
		}
		o.Assets = dir
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     o.CRDDirectories,
		ErrorIfCRDPathMissing: len(o.CRDDirectories) > 0,
		BinaryAssetsDirectory: o.Assets,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("kubeenv: starting kube-apiserver and etcd from %s: %w", o.Assets, err)
	}
	cp := &ControlPlane{Config: cfg, env: env}
	dir, err := os.MkdirTemp("", "tasker-kubeenv-")
	if err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	cp.dir = dir
	if o.GarbageCollector {
		if err := cp.startGarbageCollector(o.Assets, o.Output); err != nil {
			return nil, errors.Join(err, cp.Stop())
		}
	}
	return cp, nil
}

// AddUser adds a user authenticated by a client certificate, in the given
// groups (none: a user with only what RBAC grants it), and returns its client
// configuration.
func (c *ControlPlane) AddUser(name string, groups ...string) (*rest.Config, error) {
	user, err := c.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("kubeenv: adding user %s: %w", name, err)
	}
	return user.Config(), nil
}

// WriteKubeconfig writes a kubeconfig for a new user in the given groups to
// path, for programs and people outside this process (kubectl, a
// kube-controller-manager).
func (c *ControlPlane) WriteKubeconfig(path, name string, groups ...string) error {
	user, err := c.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return fmt.Errorf("kubeenv: adding user %s: %w", name, err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubeenv: kubeconfig for %s: %w", name, err)
	}
	return os.WriteFile(path, data, 0o600)
}

// startGarbageCollector runs kube-controller-manager with the garbage
// collector as its only controller, serving nothing, as a system:masters user.
// It starts after the CRDs are installed, so it watches their kinds from the
// first discovery (it re-reads discovery only every 30 s).
func (c *ControlPlane) startGarbageCollector(assets string, output io.Writer) error {
	kubeconfig := filepath.Join(c.dir, "kube-controller-manager.kubeconfig")
	if err := c.WriteKubeconfig(kubeconfig, "kube-controller-manager", "system:masters"); err != nil {
		return err
	}
	if output == nil {
		output = io.Discard
	}
	//nolint:gosec,noctx // our own binary, from the assets directory; it lives until Stop, not until a context ends
	cmd := exec.Command(filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--controllers=garbage-collector-controller",
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
	)
	cmd.Stdout = output
	cmd.Stderr = output
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kubeenv: starting kube-controller-manager: %w", err)
	}
	c.gc = cmd
	c.gcDone = make(chan struct{})
	go func() {
		defer close(c.gcDone)
		_ = cmd.Wait() // it exits on SIGTERM from Stop; its logs are in output
	}()
	return nil
}

// Stop stops the garbage collector, the API server and etcd, and removes
// their files. It is safe to call more than once.
func (c *ControlPlane) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		if c.gc != nil {
			_ = c.gc.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.gcDone:
			case <-time.After(10 * time.Second):
				_ = c.gc.Process.Kill()
				<-c.gcDone
			}
		}
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("kubeenv: stopping the control plane: %w", err))
		}
		if c.dir != "" {
			errs = append(errs, os.RemoveAll(c.dir))
		}
		c.stopResult = errors.Join(errs...)
	})
	return c.stopResult
}
