package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/taskerops/tasker/internal/kubeenv"
	"github.com/taskerops/tasker/orchestration/api"
)

// devHelp is the long help of `tasker dev`.
const devHelp = `Run the whole system on this machine, with nothing else running, and prove it works:

 1. start a throwaway PostgreSQL and a local Kubernetes API server (the envtest
    control plane: kube-apiserver and etcd, plus a kube-controller-manager that
    runs only its garbage collector);
 2. run the operator's manager and the orchestrator (REST API) in this process;
 3. apply config/samples: the five TaskTemplates and a WorkerPool (with the
    Secret it names), and wait until every TaskTemplate is Ready;
 4. run the WorkerPool's workers in this process, standing in for its pods: one
    per replica of the Deployment the operator made, each with that Deployment's
    command line and environment (probes moved to free local ports);
 5. submit one task of each workflow, show their progress, and print each task's
    result and timing.

It exits 0 when every task succeeded. With --keep it then stays up, printing the
REST API's address and token file and a KUBECONFIG, so that you can try kubectl
and ` + "`tasker task`" + ` by hand; Ctrl-C stops everything and removes its files.

The control plane's binaries come from --assets (KUBEBUILDER_ASSETS), or else
from hack/envtest.sh in the repository around the working directory, which
builds them once (minutes). ` + "`make demo`" + ` builds them and runs this command.
The components' logs go to a file in the work directory, or to stderr with
--verbose.`

// devOptions are the flags of `tasker dev`.
type devOptions struct {
	keep    bool
	verbose bool
	samples string
	crds    string
	assets  string
	listen  string
	timeout time.Duration
}

func newDevCommand() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run PostgreSQL, a local Kubernetes API server, the operator, the orchestrator and a worker; run each example workflow",
		Long:  devHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.keep, "keep", false, "stay up after the tasks ran, until Ctrl-C, and print how to reach the API server and the REST API")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "write the components' logs to stderr instead of a file in the work directory")
	fs.StringVar(&o.samples, "samples", "", "kustomize directory of the TaskTemplates and WorkerPools to apply, with their task contexts in contexts/ (default: config/samples of the repository around the working directory)")
	fs.StringVar(&o.crds, "crds", "", "directory of the CRDs to install (default: config/crd/bases of the repository around the working directory)")
	fs.StringVar(&o.assets, "assets", os.Getenv(kubeenv.AssetsEnv), "directory with kube-apiserver, etcd and kube-controller-manager (env "+kubeenv.AssetsEnv+"; default: what hack/envtest.sh builds)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "address of the orchestrator's REST API (port 0: a free port)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long starting, the templates becoming Ready and the example tasks may take together")
	return cmd
}

// run starts the system, runs the examples, and with --keep waits for
// Ctrl-C. Everything it started is stopped and removed when it returns.
func (o *devOptions) run(ctx context.Context, out, stderr io.Writer) error {
	samples, crds, err := o.paths()
	if err != nil {
		return err
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout: must be positive, not %s", o.timeout)
	}
	sysCtx, stopSystem := context.WithCancelCause(ctx)
	sys := newDevSystem(sysCtx, stopSystem, out)
	defer sys.stop()

	demoCtx, cancel := context.WithTimeout(sysCtx, o.timeout)
	defer cancel()
	if err := sys.start(demoCtx, o, stderr, crds); err != nil {
		return sys.explain(demoCtx, "starting", err)
	}
	applied, err := sys.applySamples(demoCtx, samples)
	if err != nil {
		return sys.explain(demoCtx, "applying "+samples, err)
	}
	if err := sys.waitTemplatesReady(demoCtx, applied.templates); err != nil {
		return sys.explain(demoCtx, "waiting for the TaskTemplates", err)
	}
	for _, pool := range applied.pools {
		if err := sys.runPoolWorkers(demoCtx, pool); err != nil {
			return sys.explain(demoCtx, "starting the workers of WorkerPool "+pool.Name, err)
		}
	}
	client := api.NewClient(sys.apiURL, sys.token, nil)
	results, err := sys.runExamples(demoCtx, client, applied.templates, filepath.Join(samples, "contexts"))
	if err != nil {
		return sys.explain(demoCtx, "running the example tasks", err)
	}
	printDevResults(out, results)
	outcome := devOutcome(results)
	if !o.keep {
		return outcome
	}
	sys.printKeep()
	<-sysCtx.Done()
	if cause := context.Cause(sysCtx); ctx.Err() == nil {
		return cause // a component stopped on its own
	}
	fmt.Fprintln(out, "\nstopping; removing", sys.workDir)
	return outcome
}

// paths resolves the samples and CRD directories.
func (o *devOptions) paths() (samples, crds string, err error) {
	samples, crds = o.samples, o.crds
	if samples == "" {
		if samples, err = kubeenv.RepoPath(filepath.Join("config", "samples")); err != nil {
			return "", "", fmt.Errorf("--samples: %w; run tasker dev in the tasker repository or name the directory", err)
		}
	}
	if crds == "" {
		if crds, err = kubeenv.RepoPath(filepath.Join("config", "crd", "bases")); err != nil {
			return "", "", fmt.Errorf("--crds: %w; run tasker dev in the tasker repository or name the directory", err)
		}
	}
	return samples, crds, nil
}
