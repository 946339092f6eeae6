package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/taskerops/tasker/orchestration/api"
)

// newTaskCommand is the `tasker task` group: a client of the orchestrator's
// REST API for people and scripts.
func newTaskCommand() *cobra.Command {
	var opts clientOptions
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Create, inspect, watch, cancel and recover tasks through the REST API",
		Long: `Create, inspect, watch, cancel and recover tasks through the orchestrator's REST API.

The commands talk to the server named by --server (env TASKER_SERVER). When the API
requires a bearer token, give it with --token (env TASKER_TOKEN) or --token-file
(env TASKER_TOKEN_FILE). Errors from the server are printed with their code, message
and every detail; the exit code is non-zero.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	opts.addFlags(cmd.PersistentFlags())
	cmd.AddCommand(
		newTaskCreateCommand(&opts),
		newTaskGetCommand(&opts),
		newTaskListCommand(&opts),
		newTaskCancelCommand(&opts),
		newTaskRetryStepCommand(&opts),
		newTaskResolveStepCommand(&opts),
		newTaskWatchCommand(&opts),
	)
	return cmd
}

// clientOptions are the flags that say which server to talk to and how.
type clientOptions struct {
	// server is the base URL of the orchestrator's REST API.
	server string
	// token is the bearer token; it wins over tokenFile.
	token string
	// tokenFile names a file holding the bearer token.
	tokenFile string
	// timeout bounds each HTTP request (not a whole watch).
	timeout time.Duration
}

func (o *clientOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.server, "server", envOr("TASKER_SERVER", "http://localhost:8080"), "base URL of the orchestrator's REST API (env TASKER_SERVER)")
	fs.StringVar(&o.token, "token", os.Getenv("TASKER_TOKEN"), "bearer token for the API (env TASKER_TOKEN)")
	fs.StringVar(&o.tokenFile, "token-file", os.Getenv("TASKER_TOKEN_FILE"), "file holding the bearer token for the API (env TASKER_TOKEN_FILE)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "time limit of each request to the API")
}

// client checks the options and builds an API client from them.
func (o *clientOptions) client() (*api.Client, error) {
	u, err := url.Parse(o.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server: %q is not an http:// or https:// URL", o.server)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("--timeout: must be positive, not %s", o.timeout)
	}
	token := o.token
	if token == "" && o.tokenFile != "" {
		data, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	return api.NewClient(strings.TrimRight(o.server, "/"), token, &http.Client{Timeout: o.timeout}), nil
}

// run builds the client, calls fn with it, and turns what fails into a
// message a person can act on.
func (o *clientOptions) run(ctx context.Context, fn func(context.Context, *api.Client) error) error {
	client, err := o.client()
	if err != nil {
		return err
	}
	return explainError(fn(ctx, client), o.server, o.timeout)
}

// outputFormat is the value of -o.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
	outputYAML  outputFormat = "yaml"
)

// addOutputFlag adds -o to a command that prints tasks.
func addOutputFlag(cmd *cobra.Command, format *outputFormat) {
	*format = outputTable
	cmd.Flags().StringVarP((*string)(format), "output", "o", string(outputTable), "output format: table, json or yaml")
}

func (f outputFormat) validate() error {
	switch f {
	case outputTable, outputJSON, outputYAML:
		return nil
	}
	return fmt.Errorf("-o/--output: %q is not one of table, json, yaml", string(f))
}

// structured reports whether the output is for programs rather than people.
func (f outputFormat) structured() bool { return f == outputJSON || f == outputYAML }

// argsNamed accepts exactly the named positional arguments and names the
// first one missing, or says how many are too many.
func argsNamed(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return fmt.Errorf("missing %s (usage: %s)", names[len(args)], cmd.UseLine())
		}
		if len(args) > len(names) {
			return fmt.Errorf("too many arguments: %q (usage: %s)", args[len(names):], cmd.UseLine())
		}
		return nil
	}
}

// parseTaskUUID reads a task UUID argument.
func parseTaskUUID(arg string) (uuid.UUID, error) {
	id, err := uuid.Parse(arg)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%q is not a task UUID", arg)
	}
	return id, nil
}

// explainError rewrites client errors into messages that say what to do:
// API errors with their code and details, an unreachable server with the
// flag that names it. Other errors pass through.
func explainError(err error, server string, timeout time.Duration) error {
	if err == nil {
		return nil
	}
	if apiErr, ok := errors.AsType[*api.Error](err); ok {
		return &apiResponseError{err: apiErr}
	}
	if reason, ok := unreachable(err); ok {
		return &unreachableError{server: server, reason: reason, err: err}
	}
	if isTimeout(err) {
		return fmt.Errorf("the tasker API at %s did not answer within %s (--timeout): %w", server, timeout, err)
	}
	return err
}
