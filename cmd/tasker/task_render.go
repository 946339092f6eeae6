package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/api"
	"github.com/taskerops/tasker/orchestration/dispatch"
)

// printTask writes a task as JSON, YAML, or the table that table renders.
func printTask(out io.Writer, task *api.Task, format outputFormat, table func(*api.Task) string) error {
	return printValue(out, task, format, func() string { return table(task) })
}

// printValue writes v as JSON or YAML (the API's own field names), or the
// table that table renders.
func printValue(out io.Writer, v any, format outputFormat, table func() string) error {
	var text []byte
	var err error
	switch format {
	case outputJSON:
		text, err = json.MarshalIndent(v, "", "  ")
		text = append(text, '\n')
	case outputYAML:
		text, err = yaml.Marshal(v)
	default:
		text = []byte(table())
	}
	if err != nil {
		return fmt.Errorf("encoding the output: %w", err)
	}
	_, err = out.Write(text)
	return err
}

// renderTaskCreated is the short table `create` prints: one row with the
// task's UUID, template and status.
func renderTaskCreated(task *api.Task) string {
	return table(func(tw io.Writer) {
		fmt.Fprintln(tw, "UUID\tTEMPLATE\tSTATUS")
		fmt.Fprintf(tw, "%s\t%s\t%s\n", task.UUID, templateOf(&task.Task), task.State)
	})
}

// renderTask is what `get` prints: the task's header, then one row per step.
func renderTask(task *api.Task) string {
	header := table(func(tw io.Writer) {
		fmt.Fprintf(tw, "Task:\t%s\n", task.UUID)
		fmt.Fprintf(tw, "Template:\t%s\n", templateOf(&task.Task))
		fmt.Fprintf(tw, "Status:\t%s\n", task.State)
		fmt.Fprintf(tw, "Execution status:\t%s\n", task.ExecutionStatus)
		fmt.Fprintf(tw, "Completion:\t%d%% (%d/%d steps)\n", task.CompletionPercentage, task.CompletedSteps, task.TotalSteps)
		fmt.Fprintf(tw, "Created:\t%s\n", task.CreatedAt.Format(time.RFC3339))
		fmt.Fprintf(tw, "Duration:\t%s\n", taskDuration(task))
	})
	if len(task.Steps) == 0 {
		return header
	}
	return header + "\n" + table(func(tw io.Writer) {
		fmt.Fprintln(tw, "NAME\tSTATE\tATTEMPTS\tDURATION\tERROR")
		for i := range task.Steps {
			s := &task.Steps[i]
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", s.Name, s.State, s.Attempts, s.MaxAttempts, stepDuration(s), stepErrorText(s.Error))
		}
	})
}

// renderTaskList is what `list` prints: a row per task, then where the page
// is in the whole list.
func renderTaskList(list *api.TaskList) string {
	rows := table(func(tw io.Writer) {
		fmt.Fprintln(tw, "UUID\tTEMPLATE\tSTATUS\tSTEPS\tCREATED\tDURATION")
		for i := range list.Tasks {
			t := &list.Tasks[i]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", t.UUID, templateOf(&t.Task), t.State,
				t.CompletedSteps, t.TotalSteps, t.CreatedAt.Format(time.RFC3339), taskDuration(t))
		}
	})
	return rows + fmt.Sprintf("page %d of %d (%d tasks)\n", list.Page, pageCount(list.Total, list.PerPage), list.Total)
}

// table aligns the tab-separated rows that write produces into columns two
// spaces apart, without trailing blanks where the last cells are empty.
func table(write func(io.Writer)) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	write(tw)
	_ = tw.Flush()
	lines := strings.SplitAfter(b.String(), "\n")
	for i, line := range lines {
		if trimmed, ok := strings.CutSuffix(line, "\n"); ok {
			lines[i] = strings.TrimRight(trimmed, " ") + "\n"
		}
	}
	return strings.Join(lines, "")
}

// templateOf names a task's template as namespace/name@version.
func templateOf(task *orchestration.Task) string {
	return fmt.Sprintf("%s/%s@%s", task.Namespace, task.Name, task.Version)
}

// pageCount is how many pages of perPage hold total items (at least one).
func pageCount(total, perPage int) int {
	if perPage <= 0 || total <= perPage {
		return 1
	}
	return (total + perPage - 1) / perPage
}

// taskDuration is how long a task ran: from creation to its end, or to its
// last change when it is blocked by failures; "-" while it runs.
func taskDuration(task *api.Task) string {
	switch {
	case task.DurationMs != nil:
		return formatDuration(time.Duration(*task.DurationMs) * time.Millisecond)
	case task.State == orchestration.TaskBlockedByFailures:
		return formatDuration(task.UpdatedAt.Sub(task.CreatedAt))
	}
	return "-"
}

// stepDuration is how long a step's last attempt ran, or "-" when it has
// not finished.
func stepDuration(s *orchestration.Step) string {
	if s.StartedAt == nil || s.CompletedAt == nil {
		return "-"
	}
	return formatDuration(s.CompletedAt.Sub(*s.StartedAt))
}

// stepErrorText is "CODE: message", or "" for a step without an error.
func stepErrorText(e *dispatch.StepError) string {
	if e == nil {
		return ""
	}
	return e.Code + ": " + e.Message
}

// formatDuration rounds a duration to the millisecond ("1.234s", "15ms").
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Millisecond).String()
}
