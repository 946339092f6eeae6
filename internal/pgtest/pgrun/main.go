// Command pgrun runs a command, typically `go test ./...`, against one
// throwaway PostgreSQL server shared by every test process it starts:
//
//	go run ./internal/pgtest/pgrun -- go test ./...
//
// It starts a cluster, runs the command with TASKER_TEST_DATABASE_URL set to
// the cluster's postgres database (pgtest then creates each test's database
// there instead of starting a server per package), stops the cluster when the
// command exits and exits with the command's exit code. SIGINT and SIGTERM
// are forwarded to the command. When TASKER_TEST_DATABASE_URL is already set,
// pgrun just executes the command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/taskerops/tasker/internal/pgcluster"
	"github.com/taskerops/tasker/internal/pgtest"
)

// Exit codes of pgrun's own failures, as a shell reports them.
const (
	exitUsage       = 2
	exitNotRunnable = 127
	exitSignalBase  = 128
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs pgrun with its command-line arguments and returns the exit code.
func run(args []string) int {
	flags := flag.NewFlagSet("pgrun", flag.ContinueOnError)
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "usage: pgrun -- command [args...]")
	}
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	command := flags.Args()
	if len(command) == 0 {
		flags.Usage()
		return exitUsage
	}
	if os.Getenv(pgtest.DatabaseURLEnv) != "" {
		return execCommand(command)
	}
	return runWithCluster(command)
}

// execCommand replaces pgrun with command; it returns only on failure.
func execCommand(command []string) int {
	path, err := exec.LookPath(command[0])
	if err == nil {
		err = syscall.Exec(path, command, os.Environ())
	}
	fmt.Fprintf(os.Stderr, "pgrun: %v\n", err)
	return exitNotRunnable
}

// runWithCluster starts a cluster, runs command against it and stops it.
func runWithCluster(command []string) int {
	// Signals that arrive while the cluster starts abort the start; later
	// ones go to the command.
	forward := make(chan os.Signal, 4)
	signal.Notify(forward, syscall.SIGINT, syscall.SIGTERM)
	startCtx, stopStartSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	cluster, err := pgcluster.Start(startCtx, pgcluster.Config{})
	stopStartSignals()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgrun: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "pgrun: PostgreSQL %s on 127.0.0.1:%d\n", shortVersion(cluster.Version()), cluster.Port())

	code := runCommand(command, cluster.URL("postgres"), forward)
	if err := cluster.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgrun: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// runCommand runs command with the database URL in its environment,
// forwarding the signals received on signals, and returns its exit code.
func runCommand(command []string, databaseURL string, signals <-chan os.Signal) int {
	//nolint:noctx // the child is ended by the signals forwarded to it, not by a context
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), pgtest.DatabaseURLEnv+"="+databaseURL)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "pgrun: %v\n", err)
		return exitNotRunnable
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-signals:
				_ = cmd.Process.Signal(sig)
			case <-done:
				return
			}
		}
	}()
	return exitCode(cmd.Wait())
}

// exitCode returns the exit code a shell would report for a command that
// ended with err, the result of exec.Cmd.Wait.
func exitCode(err error) int {
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgrun: %v\n", err)
			return 1
		}
		return 0
	}
	if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		return exitSignalBase + int(status.Signal())
	}
	return exitErr.ExitCode()
}

// shortVersion returns the version number at the start of a server_version
// such as "15.14 (Debian 15.14-0+deb12u1)".
func shortVersion(version string) string {
	number, _, _ := strings.Cut(version, " ")
	return number
}
