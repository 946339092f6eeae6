// Command tasker is the single binary of Tasker: its subcommand picks the
// role (orchestrator, migrate, and more). `tasker --help` lists them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run())
}

// run executes the command line and returns the exit code; SIGINT and
// SIGTERM cancel the command's context so that it can shut down cleanly.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tasker:", err)
		return 1
	}
	return 0
}
