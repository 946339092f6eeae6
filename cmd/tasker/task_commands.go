package main

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/taskerops/tasker/orchestration/api"
)

func newTaskGetCommand(client *clientOptions) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "get UUID",
		Short: "Show a task and its steps",
		Args:  argsNamed("UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTaskArgs(output, args[0])
			if err != nil {
				return err
			}
			return client.run(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				task, err := c.GetTask(ctx, id)
				if err != nil {
					return err
				}
				return printTask(cmd.OutOrStdout(), task, output, renderTask)
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func newTaskListCommand(client *clientOptions) *cobra.Command {
	var (
		opts   api.ListOptions
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tasks, newest first, a page at a time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.validate(); err != nil {
				return err
			}
			if opts.Page < 1 || opts.PerPage < 0 {
				return fmt.Errorf("--page must be at least 1 and --per-page at least 0, not %d and %d", opts.Page, opts.PerPage)
			}
			return client.run(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				list, err := c.ListTasks(ctx, opts)
				if err != nil {
					return err
				}
				return printValue(cmd.OutOrStdout(), list, output, func() string { return renderTaskList(list) })
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.Namespace, "namespace", "", "only tasks of this workflow namespace")
	fs.StringVar(&opts.Status, "status", "", "only tasks in this status, e.g. blocked_by_failures")
	fs.IntVar(&opts.Page, "page", 1, "page to show, from 1")
	fs.IntVar(&opts.PerPage, "per-page", 0, "tasks per page (default: the server's)")
	addOutputFlag(cmd, &output)
	return cmd
}

func newTaskCancelCommand(client *clientOptions) *cobra.Command {
	var (
		reason string
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "cancel UUID",
		Short: "Cancel a task that has not finished: its open steps and running handlers stop",
		Args:  argsNamed("UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTaskArgs(output, args[0])
			if err != nil {
				return err
			}
			return client.run(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				task, err := c.CancelTask(ctx, id, reason)
				if err != nil {
					return err
				}
				return printTask(cmd.OutOrStdout(), task, output, renderTask)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded with the transition")
	addOutputFlag(cmd, &output)
	return cmd
}

func newTaskRetryStepCommand(client *clientOptions) *cobra.Command {
	var (
		reason string
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "retry-step UUID STEP",
		Short: "Run a failed step again with a fresh retry budget",
		Args:  argsNamed("UUID", "STEP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTaskArgs(output, args[0])
			if err != nil {
				return err
			}
			return client.run(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				task, err := c.RetryStep(ctx, id, args[1], reason)
				if err != nil {
					return err
				}
				return printTask(cmd.OutOrStdout(), task, output, renderTask)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded with the transition")
	addOutputFlag(cmd, &output)
	return cmd
}

func newTaskResolveStepCommand(client *clientOptions) *cobra.Command {
	var (
		reason, result string
		output         outputFormat
	)
	cmd := &cobra.Command{
		Use:   "resolve-step UUID STEP",
		Short: "Mark a failed step as resolved by hand, optionally with the result it should have had",
		Args:  argsNamed("UUID", "STEP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTaskArgs(output, args[0])
			if err != nil {
				return err
			}
			stepResult, err := readJSONArg(cmd.InOrStdin(), "--result", result)
			if err != nil {
				return err
			}
			return client.run(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				task, err := c.ResolveStep(ctx, id, args[1], stepResult, reason)
				if err != nil {
					return err
				}
				return printTask(cmd.OutOrStdout(), task, output, renderTask)
			})
		},
	}
	cmd.Flags().StringVar(&result, "result", "", "the step's result as JSON, @FILE or @-, seen by its dependents")
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded with the transition")
	addOutputFlag(cmd, &output)
	return cmd
}

// parseTaskArgs checks -o and the task UUID argument, the checks every
// command about one task starts with.
func parseTaskArgs(output outputFormat, arg string) (uuid.UUID, error) {
	if err := output.validate(); err != nil {
		return uuid.Nil, err
	}
	return parseTaskUUID(arg)
}
