package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
)

// Environment variables that turn the test binary into a helper process.
const (
	// asPgrunEnv makes the test binary behave as pgrun itself.
	asPgrunEnv = "PGRUN_TEST_AS_PGRUN"
	// connectEnv makes the test binary connect to TASKER_TEST_DATABASE_URL
	// and write the URL to the file it names.
	connectEnv = "PGRUN_TEST_CONNECT"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(asPgrunEnv) != "":
		os.Exit(run(os.Args[1:]))
	case os.Getenv(connectEnv) != "":
		os.Exit(connectAndRecord(os.Getenv(connectEnv)))
	}
	os.Exit(m.Run())
}

// connectAndRecord is the command pgrun runs in TestRun: it connects to the
// database URL pgrun gives it, writes the URL to path and exits 0.
func connectAndRecord(path string) int {
	url := os.Getenv(pgtest.DatabaseURLEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 3
	}
	if err := conn.Ping(ctx); err != nil {
		return 4
	}
	_ = conn.Close(ctx)
	if err := os.WriteFile(path, []byte(url), 0o600); err != nil {
		return 5
	}
	return 0
}

func TestRun(t *testing.T) {
	t.Run("CommandGetsAServerThatIsGoneAfterwards", func(t *testing.T) {
		t.Setenv(pgtest.DatabaseURLEnv, "")
		record := filepath.Join(t.TempDir(), "url")
		t.Setenv(connectEnv, record)

		require.Equal(t, 0, run([]string{"--", os.Args[0]}))

		url, err := os.ReadFile(record)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(url), "postgres://postgres@127.0.0.1:"), string(url))
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err = pgx.Connect(ctx, string(url))
		require.Error(t, err, "the server is stopped when the command exits")
	})

	t.Run("ExitCodeOfTheCommand", func(t *testing.T) {
		t.Setenv(pgtest.DatabaseURLEnv, "")
		require.Equal(t, 7, run([]string{"--", "sh", "-c", `test -n "$TASKER_TEST_DATABASE_URL" && exit 7`}))
		require.Equal(t, 128+15, run([]string{"--", "sh", "-c", `kill -TERM $$`}))
		require.Equal(t, exitNotRunnable, run([]string{"--", "/nonexistent/command"}))
		require.Equal(t, exitUsage, run(nil))
	})

	t.Run("ExistingURLPassedThrough", func(t *testing.T) {
		const url = "postgres://someone@db.example:5432/postgres"
		cmd := exec.Command(os.Args[0], "--", "sh", "-c", `echo "$TASKER_TEST_DATABASE_URL"; exit 5`)
		cmd.Env = append(os.Environ(), asPgrunEnv+"=1", pgtest.DatabaseURLEnv+"="+url)
		out, err := cmd.Output()
		var exitErr *exec.ExitError
		require.ErrorAs(t, err, &exitErr)
		require.Equal(t, 5, exitErr.ExitCode())
		require.Equal(t, url+"\n", string(out), "no server started, nothing printed")
	})
}
