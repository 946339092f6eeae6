package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/taskerops/tasker/orchestration/api"
)

// createOptions are the flags of `tasker task create`.
type createOptions struct {
	// req collects the request fields that come straight from flags.
	req api.CreateTaskRequest
	// context is the task's input: JSON, @file, or @- for standard input.
	context string
	// output is the -o format.
	output outputFormat
	// watch keeps following the task until it ends.
	watch bool
	// interval is the polling interval of --watch.
	interval time.Duration
}

func newTaskCreateCommand(client *clientOptions) *cobra.Command {
	var opts createOptions
	cmd := &cobra.Command{
		Use:   "create NAMESPACE NAME",
		Short: "Create a task from a registered template",
		Long: `Create a task from the template NAMESPACE/NAME (the highest active version unless
--version says otherwise). The context is the task's input, checked by the server
against the template's input schema: give it inline, as @FILE, or as @- to read
standard input.

With --watch, follow the task until it ends, as 'tasker task watch' does, and exit
with its outcome.`,
		Example: `  tasker task create linear_workflow mathematical_sequence --context '{"even_number": 6}'
  tasker task create linear_workflow mathematical_sequence --context @input.json --watch`,
		Args: argsNamed("NAMESPACE", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.output.validate(); err != nil {
				return err
			}
			taskContext, err := readJSONArg(cmd.InOrStdin(), "--context", opts.context)
			if err != nil {
				return err
			}
			req := opts.req
			req.Namespace, req.Name, req.Context = args[0], args[1], taskContext
			return client.run(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				return runCreate(ctx, cmd, c, req, opts)
			})
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func (o *createOptions) addFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&o.req.Version, "version", "", "template version (default: the highest active one)")
	fs.StringVar(&o.context, "context", "", "task input as JSON, @FILE or @- (default {})")
	fs.StringVar(&o.req.Initiator, "initiator", "", "who asks for the task, recorded with it")
	fs.StringVar(&o.req.SourceSystem, "source-system", "", "which system asks for the task, recorded with it")
	fs.StringVar(&o.req.Reason, "reason", "", "why the task is created, recorded with it")
	fs.IntVar(&o.req.Priority, "priority", 0, "priority recorded with the task (higher is more urgent)")
	fs.StringVar(&o.req.IdempotencyKey, "idempotency-key", "", "the task's identity: a second create with the same key is refused as a duplicate")
	fs.BoolVar(&o.watch, "watch", false, "follow the task until it ends, then exit with its outcome")
	fs.DurationVar(&o.interval, "interval", defaultWatchInterval, "with --watch: how often to poll the task")
	addOutputFlag(cmd, &o.output)
}

// runCreate creates the task, prints it, and follows it with --watch.
// With --watch and -o json|yaml only the final task is printed.
func runCreate(ctx context.Context, cmd *cobra.Command, c *api.Client, req api.CreateTaskRequest, opts createOptions) error {
	task, err := c.CreateTask(ctx, req)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if !opts.watch {
		return printTask(out, task, opts.output, renderTaskCreated)
	}
	if !opts.output.structured() {
		if _, err := io.WriteString(out, renderTaskCreated(task)); err != nil {
			return err
		}
	}
	return watchTask(ctx, cmd, c, task.UUID, opts.interval, opts.output)
}

// readJSONArg reads a JSON flag value given inline, as @FILE, or as @- for
// stdin, and checks that it is JSON. An empty value gives nil.
func readJSONArg(stdin io.Reader, flag, value string) (json.RawMessage, error) {
	if value == "" {
		return nil, nil
	}
	data, source := []byte(value), flag
	if name, ok := strings.CutPrefix(value, "@"); ok {
		var err error
		source = fmt.Sprintf("%s %s", flag, value)
		if name == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
	}
	var probe any
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON: %w", source, err)
	}
	return json.RawMessage(data), nil
}
