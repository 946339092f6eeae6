// Command greeter is a worker with a handler of its own: the smallest
// program that serves a workflow with Go code you write. It serves the
// "greeting" namespace of tasktemplate.yaml beside it:
//
//	go build -o bin/greeter ./examples/greeter
//	bin/greeter --database-url "$TASKER_DATABASE_URL"
//
// Stop it with Ctrl-C (or SIGTERM): running steps finish, the rest go back
// to the queue.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskerops/tasker/worker"
)

func main() {
	databaseURL := flag.String("database-url", os.Getenv("TASKER_DATABASE_URL"), "PostgreSQL URL (env TASKER_DATABASE_URL)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *databaseURL)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "greeter:", err)
		os.Exit(1)
	}
}

// register adds this program's handlers: one per callable that its
// TaskTemplate's steps name.
func register(registry *worker.Registry) {
	registry.MustRegister("greeting.Compose", worker.HandlerFunc(
		func(ctx context.Context, step *worker.TaskSequenceStep) (worker.StepResult, error) {
			var input struct {
				Name string `json:"name"`
			}
			if err := step.DecodeContext(&input); err != nil {
				return worker.StepResult{}, worker.PermanentError("BAD_CONTEXT", err.Error(), nil)
			}
			return worker.StepResult{Result: map[string]string{"greeting": "Hello, " + input.Name + "!"}}, nil
		}))
	registry.MustRegister("greeting.Shout", worker.HandlerFunc(
		func(ctx context.Context, step *worker.TaskSequenceStep) (worker.StepResult, error) {
			var composed struct {
				Greeting string `json:"greeting"`
			}
			if err := step.DependencyResult("compose", &composed); err != nil {
				return worker.StepResult{}, err // retryable: the result is not there yet
			}
			return worker.StepResult{Result: map[string]string{"greeting": strings.ToUpper(composed.Greeting)}}, nil
		}))
}

func run(ctx context.Context, databaseURL string) error {
	if databaseURL == "" {
		return errors.New("--database-url (or TASKER_DATABASE_URL) is required")
	}
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	registry := worker.NewRegistry()
	register(registry)
	w, err := worker.New(pool, worker.Config{
		Namespaces: []string{"greeting"},
		Registry:   registry,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}
