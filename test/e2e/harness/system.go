package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taskerops/tasker/orchestration/api"
)

// AllNamespaces are the workflow namespaces of the five sample templates.
var AllNamespaces = []string{
	"linear_workflow", "diamond_workflow", "tree_workflow", "mixed_dag_workflow", "order_fulfillment",
}

// Options describe the processes Start runs.
type Options struct {
	// Binary is the tasker binary (see Build). Required.
	Binary string
	// DatabaseURL is the database every process uses. Required; it should
	// be migrated and hold the templates the tests need.
	DatabaseURL string
	// Dir receives the log files and the token file. Required.
	Dir string
	// Orchestrators and Workers are how many of each to start; default 1.
	Orchestrators int
	Workers       int
	// Namespaces are the workers' --namespaces; default AllNamespaces.
	Namespaces []string
	// Token, when set, is the API's bearer token: written to a file passed
	// as --api-token-file, and sent by every Client.
	Token string
	// IDPrefix starts every process's --process-id / --worker-id, so that
	// several systems on one database stay apart in the transition history.
	IDPrefix string
	// OrchestratorArgs and WorkerArgs are extra flags of every orchestrator
	// and worker, e.g. "--sweep-interval", "1s".
	OrchestratorArgs []string
	WorkerArgs       []string
	// ReadyTimeout bounds the wait for each process's /readyz; default 60s.
	ReadyTimeout time.Duration
	// StopTimeout bounds each process's exit after SIGTERM; default 60s.
	StopTimeout time.Duration
}

// withDefaults returns a copy of o with every unset optional field given
// its default.
func (o Options) withDefaults() Options {
	if o.Orchestrators == 0 {
		o.Orchestrators = 1
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	if len(o.Namespaces) == 0 {
		o.Namespaces = AllNamespaces
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = time.Minute
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = time.Minute
	}
	return o
}

// System is a set of running orchestrators and workers sharing a database.
type System struct {
	// Orchestrators and Workers are the running processes, in start order.
	// Use StartWorker to add workers rather than appending.
	Orchestrators []*Process
	Workers       []*Process

	opts      Options
	tokenFile string
	clients   []*api.Client
	next      atomic.Uint64
	mu        sync.Mutex // guards Workers while StartWorker appends
}

// Start starts the orchestrators, then the workers, each ready (its /readyz
// answers 200) before Start returns. On failure it kills whatever it
// started. Call Kill when done (e.g. from t.Cleanup), even after Stop.
func Start(ctx context.Context, opts Options) (*System, error) {
	opts = opts.withDefaults()
	if opts.Binary == "" || opts.DatabaseURL == "" || opts.Dir == "" {
		return nil, errors.New("harness: Options.Binary, DatabaseURL and Dir are required")
	}
	s := &System{opts: opts}
	if opts.Token != "" {
		s.tokenFile = filepath.Join(opts.Dir, "api-token")
		if err := os.WriteFile(s.tokenFile, []byte(opts.Token+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	orchestrators, err := startAll(opts.Orchestrators, func(i int) (*Process, error) {
		return s.startOrchestrator(ctx, fmt.Sprintf("orchestrator-%d", i+1))
	})
	s.Orchestrators = orchestrators
	if err != nil {
		return nil, errors.Join(err, s.Kill())
	}
	for _, p := range s.Orchestrators {
		s.clients = append(s.clients, api.NewClient("http://"+p.Addr, opts.Token, nil))
	}
	workers, err := startAll(opts.Workers, func(i int) (*Process, error) {
		return s.startWorker(ctx, fmt.Sprintf("worker-%d", i+1), nil)
	})
	s.Workers = workers
	if err != nil {
		return nil, errors.Join(err, s.Kill())
	}
	return s, nil
}

// startAll runs start n times concurrently and returns the processes that
// started, in index order, with every error.
func startAll(n int, start func(i int) (*Process, error)) ([]*Process, error) {
	procs := make([]*Process, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { procs[i], errs[i] = start(i) })
	}
	wg.Wait()
	var started []*Process
	for _, p := range procs {
		if p != nil {
			started = append(started, p)
		}
	}
	return started, errors.Join(errs...)
}

// StartWorker starts one more worker named name (its --worker-id is
// IDPrefix+name) with extra flags after Options.WorkerArgs, and waits until
// it is ready.
func (s *System) StartWorker(ctx context.Context, name string, extra ...string) (*Process, error) {
	p, err := s.startWorker(ctx, name, extra)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.Workers = append(s.Workers, p)
	s.mu.Unlock()
	return p, nil
}

func (s *System) startOrchestrator(ctx context.Context, name string) (*Process, error) {
	return s.startReady(ctx, name, func(id, addr string) []string {
		args := []string{"orchestrator", "--database-url", s.opts.DatabaseURL, "--listen", addr, "--process-id", id}
		if s.tokenFile != "" {
			args = append(args, "--api-token-file", s.tokenFile)
		}
		return append(args, s.opts.OrchestratorArgs...)
	})
}

func (s *System) startWorker(ctx context.Context, name string, extra []string) (*Process, error) {
	return s.startReady(ctx, name, func(id, addr string) []string {
		args := []string{
			"worker", "--database-url", s.opts.DatabaseURL, "--namespaces", strings.Join(s.opts.Namespaces, ","),
			"--worker-id", id, "--health-listen", addr,
		}
		args = append(args, s.opts.WorkerArgs...)
		return append(args, extra...)
	})
}

// portAttempts is how many free ports startReady tries.
const portAttempts = 3

// startReady starts a process on a free port and waits until it is ready,
// trying another port when the chosen one was taken meanwhile.
func (s *System) startReady(ctx context.Context, name string, args func(id, addr string) []string) (*Process, error) {
	id := s.opts.IDPrefix + name
	logPath := filepath.Join(s.opts.Dir, s.opts.IDPrefix+name+".log")
	var err error
	for range portAttempts {
		var addr string
		if addr, err = FreeAddr(ctx); err != nil {
			return nil, err
		}
		var p *Process
		if p, err = startProcess(ctx, name, id, addr, s.opts.Binary, logPath, s.opts.StopTimeout, args(id, addr)); err != nil {
			return nil, err
		}
		if err = p.WaitReady(ctx, s.opts.ReadyTimeout); err == nil {
			return p, nil
		}
		_ = p.Kill()
		if !p.portTaken() {
			return nil, err
		}
	}
	return nil, err
}

// Client returns the API client of orchestrator i modulo the number of
// orchestrators, so that Client(0), Client(1), ... go round the replicas.
func (s *System) Client(i int) *api.Client {
	return s.clients[i%len(s.clients)]
}

// NextClient returns the client of the next orchestrator in turn; safe for
// concurrent use.
func (s *System) NextClient() *api.Client {
	return s.clients[int(s.next.Add(1)-1)%len(s.clients)]
}

// BaseURL returns the API's base URL on orchestrator i modulo the number of
// orchestrators, for requests the client cannot make (e.g. malformed ones).
func (s *System) BaseURL(i int) string {
	return "http://" + s.Orchestrators[i%len(s.Orchestrators)].Addr
}

// Token returns the API's bearer token ("" without authentication).
func (s *System) Token() string { return s.opts.Token }

// Processes returns every process: the workers first, then the
// orchestrators (the order in which Stop stops them).
func (s *System) Processes() []*Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	procs := append([]*Process(nil), s.Workers...)
	return append(procs, s.Orchestrators...)
}

// Stop stops the workers, then the orchestrators, each group concurrently
// with SIGTERM. It returns an error for every process that does not exit
// with code 0, including those killed earlier on purpose: check their
// exits yourself and use StopRunning then.
func (s *System) Stop() error {
	s.mu.Lock()
	workers := append([]*Process(nil), s.Workers...)
	s.mu.Unlock()
	return errors.Join(stopAll(workers, false), stopAll(s.Orchestrators, false))
}

// StopRunning is Stop for the processes still running: those that already
// exited are not reported.
func (s *System) StopRunning() error {
	s.mu.Lock()
	workers := append([]*Process(nil), s.Workers...)
	s.mu.Unlock()
	return errors.Join(stopAll(workers, true), stopAll(s.Orchestrators, true))
}

// stopAll stops the processes concurrently and joins their errors; with
// runningOnly, processes that already exited are skipped.
func stopAll(procs []*Process, runningOnly bool) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		if runningOnly && !p.Running() {
			continue
		}
		wg.Go(func() { errs[i] = p.Stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Kill kills every process still running and waits for them. It is safe to
// call at any time, several times, and after Stop.
func (s *System) Kill() error {
	var errs []error
	for _, p := range s.Processes() {
		errs = append(errs, p.Kill())
	}
	return errors.Join(errs...)
}
