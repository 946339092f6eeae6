package queue

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValidateName(t *testing.T) {
	t.Parallel()

	valid := []string{
		"jobs",
		"_private",
		"linear_workflow_queue",
		"orchestration_step_results",
		"q2",
		strings.Repeat("a", MaxNameLength),
	}
	for _, name := range valid {
		require.NoError(t, ValidateName(name), "%q is a valid name", name)
	}

	invalid := []struct {
		name, mentions string
	}{
		{"", "^[a-z_][a-z0-9_]*$"},
		{"Bad-Name", "^[a-z_][a-z0-9_]*$"},
		{"Jobs", "lowercase"},
		{"9lives", "not starting with a digit"},
		{"a b", "^[a-z_][a-z0-9_]*$"},
		{"jobs;drop", "^[a-z_][a-z0-9_]*$"},
		{"café", "^[a-z_][a-z0-9_]*$"},
		{strings.Repeat("a", 48), "maximum is 47"},
		{strings.Repeat("a", 60), "60 characters long"},
	}
	for _, tc := range invalid {
		err := ValidateName(tc.name)
		require.ErrorIs(t, err, ErrInvalidName, "%q is invalid", tc.name)
		require.ErrorContains(t, err, tc.mentions)
	}
}

func TestChannel(t *testing.T) {
	t.Parallel()

	require.Equal(t, "tasker_linear_workflow_queue", Channel("linear_workflow_queue"))
	require.LessOrEqual(t, len(Channel(strings.Repeat("a", MaxNameLength))), 63,
		"the longest queue's channel is a valid PostgreSQL channel name")
}

func TestSeconds(t *testing.T) {
	t.Parallel()

	cases := []struct {
		in   time.Duration
		want int32
	}{
		{0, 0},
		{time.Nanosecond, 1},
		{time.Millisecond, 1},
		{time.Second, 1},
		{time.Second + time.Nanosecond, 2},
		{1500 * time.Millisecond, 2},
		{time.Minute, 60},
		{(1<<31 - 1) * time.Second, 1<<31 - 1},
	}
	for _, tc := range cases {
		got, err := seconds(tc.in, "delay")
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "seconds(%s) rounds up", tc.in)
	}

	_, err := seconds(-time.Second, "delay")
	require.ErrorContains(t, err, "delay must not be negative")
	_, err = seconds(1<<31*time.Second, "delay")
	require.ErrorContains(t, err, "longer than PGMQ's limit")
	_, err = seconds(time.Duration(1<<63-1), "delay")
	require.ErrorContains(t, err, "longer than PGMQ's limit")
}
