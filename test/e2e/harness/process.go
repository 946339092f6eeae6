package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tailLines is how many lines of a process's log an error quotes.
const tailLines = 40

// Process is one running tasker process (an orchestrator or a worker) whose
// output goes to a log file.
type Process struct {
	// Name is the process's name in the system, e.g. "worker-2".
	Name string
	// ID is the identity the process records in claims and transitions
	// (its --worker-id or --process-id).
	ID string
	// Cmd is the running command.
	Cmd *exec.Cmd
	// LogPath is the file holding the process's stdout and stderr.
	LogPath string
	// Addr is the host:port of the process's HTTP server (the API of an
	// orchestrator, the probes and metrics of a worker).
	Addr string
	// StopTimeout bounds how long Stop waits after SIGTERM before it kills
	// the process.
	StopTimeout time.Duration

	logFile *os.File
	// exited is closed once the process has exited; waitErr is then what
	// Wait returned.
	exited  chan struct{}
	waitErr error
	// mu guards killed, which says that the harness sent SIGKILL.
	mu     sync.Mutex
	killed bool
}

// startProcess starts bin with args, its output appended to logPath. The
// process outlives ctx: Stop and Kill end it.
func startProcess(ctx context.Context, name, id, addr, bin, logPath string, stopTimeout time.Duration, args []string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(context.WithoutCancel(ctx), bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttributes()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{
		Name: name, ID: id, Cmd: cmd, LogPath: logPath, Addr: addr, StopTimeout: stopTimeout,
		logFile: logFile, exited: make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		_ = p.logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// childAttributes makes a child die with its parent (SIGKILL when the
// thread that started it ends) and puts it in its own process group, so a
// terminal's Ctrl-C reaches the parent alone, which then stops the child in
// order.
func childAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// Exited returns a channel closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits for the process to exit. It returns an error,
// with the end of the log, when the exit code is not 0 or the process does
// not exit within StopTimeout (it is then killed). Stopping a process that
// already exited just reports how it exited.
func (p *Process) Stop() error {
	if p.Running() {
		if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("%s: SIGTERM: %w", p.Name, err)
		}
	}
	select {
	case <-p.exited:
	case <-time.After(p.StopTimeout):
		_ = p.Kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed it\n%s", p.Name, p.StopTimeout, p.Tail(tailLines))
	}
	return p.ExitError()
}

// Kill sends SIGKILL, unless the process already exited, and waits until
// it has exited. It is safe to call at any time, several times.
func (p *Process) Kill() error {
	if p.Running() {
		p.mu.Lock()
		p.killed = true
		p.mu.Unlock()
		if err := p.Cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("%s: SIGKILL: %w", p.Name, err)
		}
	}
	<-p.exited
	return nil
}

// ExitError returns nil while the process runs or when it exited with code
// 0; otherwise an error saying how it ended, with the end of its log.
func (p *Process) ExitError() error {
	if p.Running() || p.waitErr == nil {
		return nil
	}
	p.mu.Lock()
	killed := p.killed
	p.mu.Unlock()
	how := p.waitErr.Error()
	if killed {
		how += " (killed by the harness)"
	}
	return fmt.Errorf("%s exited: %s\n%s", p.Name, how, p.Tail(tailLines))
}

// Tail returns the last n lines of the process's log, indented, under a
// heading naming the log file.
func (p *Process) Tail(n int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("--- %s: %v", p.LogPath, err)
	}
	return fmt.Sprintf("--- last lines of %s:\n%s", p.LogPath, lastLines(string(data), n))
}

// lastLines returns the last n lines of text, each indented by two spaces.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// readyPollInterval is how often WaitReady asks a process whether it is
// ready.
const readyPollInterval = 50 * time.Millisecond

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago. Another process may take it before the caller binds it; the harness
// retries a start that fails for that reason.
func FreeAddr(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", err
	}
	return addr, nil
}

// WaitReady polls http://Addr/readyz until it answers 200 OK. It fails,
// with the end of the process's log, when the process exits, ctx ends or
// timeout passes first.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	ticker := time.NewTicker(readyPollInterval)
	defer ticker.Stop()
	var last string
	for {
		ok, why := probe(ctx, hc, "http://"+p.Addr+"/readyz")
		if ok {
			return nil
		}
		last = why
		select {
		case <-ticker.C:
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%s)\n%s", p.Name, p.Cmd.ProcessState, p.Tail(tailLines))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s after %s (last answer: %s)\n%s", p.Name, p.Addr, timeout, last, p.Tail(tailLines))
		}
	}
}

// probe sends one GET and reports whether it answered 200, or what it
// answered instead.
func probe(ctx context.Context, hc *http.Client, url string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == http.StatusOK {
		return true, ""
	}
	return false, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
}

// portTaken reports whether the process failed because its address was in
// use (another process took the free port first).
func (p *Process) portTaken() bool {
	if p.Running() {
		return false
	}
	return strings.Contains(p.Tail(tailLines), "address already in use")
}
