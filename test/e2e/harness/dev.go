package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Dev is a running `tasker dev --keep`: PostgreSQL, a local Kubernetes API
// server, the manager, the orchestrator and the sample WorkerPool's workers,
// with the five example tasks already run.
type Dev struct {
	// Output is what it printed up to the end of its summary.
	Output string
	// Env holds the variables its summary tells the user to export:
	// KUBECONFIG, TASKER_SERVER, TASKER_TOKEN_FILE, TASKER_DATABASE_URL.
	Env map[string]string
	// WorkDir is the directory it removes when it stops.
	WorkDir string

	cmd    *exec.Cmd
	output *io.PipeWriter
	done   chan error
}

var (
	devExportLine  = regexp.MustCompile(`^\s+export (.+)$`)
	devAssignment  = regexp.MustCompile(`([A-Z_]+)=(\S+)`)
	devWorkDirLine = regexp.MustCompile(`^work directory (\S+) `)
)

// devSummaryEnd is the start of the last line of the --keep summary.
const devSummaryEnd = "The workers stand in for WorkerPool pods"

// StartDev runs `bin dev --keep` in dir (the repository, for config/) and
// returns once its summary is printed, i.e. the system is up and the
// example tasks ran. Its stderr goes to this process's stderr.
func StartDev(ctx context.Context, bin, dir string, timeout time.Duration) (*Dev, error) {
	cmd := exec.Command(bin, "dev", "--keep", "--timeout", timeout.String()) //nolint:gosec,noctx // our own binary; it lives until Stop
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childAttributes()
	reader, writer := io.Pipe()
	cmd.Stdout = writer
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting tasker dev: %w", err)
	}
	d := &Dev{Env: map[string]string{}, cmd: cmd, output: writer, done: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		_ = writer.Close()
		d.done <- err
	}()

	summary := make(chan error, 1)
	go func() {
		var seen strings.Builder
		lines := bufio.NewScanner(reader)
		for lines.Scan() {
			line := lines.Text()
			seen.WriteString(line + "\n")
			if m := devWorkDirLine.FindStringSubmatch(line); m != nil {
				d.WorkDir = m[1]
			}
			if m := devExportLine.FindStringSubmatch(line); m != nil {
				for _, kv := range devAssignment.FindAllStringSubmatch(m[1], -1) {
					d.Env[kv[1]] = kv[2]
				}
			}
			if strings.HasPrefix(line, devSummaryEnd) {
				d.Output = seen.String()
				summary <- nil
				_, _ = io.Copy(io.Discard, reader) // never block its writes
				return
			}
		}
		d.Output = seen.String()
		summary <- fmt.Errorf("tasker dev --keep ended its output before the summary:\n%s", seen.String())
	}()

	select {
	case err := <-summary:
		if err != nil {
			_ = d.Stop()
			return nil, err
		}
	case <-ctx.Done():
		_ = d.Stop()
		return nil, fmt.Errorf("waiting for tasker dev --keep: %w", ctx.Err())
	}
	for _, name := range []string{"KUBECONFIG", "TASKER_SERVER", "TASKER_TOKEN_FILE", "TASKER_DATABASE_URL"} {
		if d.Env[name] == "" {
			_ = d.Stop()
			return nil, fmt.Errorf("tasker dev --keep did not print export %s:\n%s", name, d.Output)
		}
	}
	return d, nil
}

// Stop sends Ctrl-C (SIGINT) and waits for the exit; it returns the exit
// error, nil for exit status 0.
func (d *Dev) Stop() error {
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case err := <-d.done:
		d.done <- err // for a second Stop
		return err
	case <-time.After(time.Minute):
		_ = d.cmd.Process.Kill()
		return errors.New("tasker dev did not stop within a minute of SIGINT; killed")
	}
}
