package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// unusedServer is an address nothing listens on, so that a test that
// reaches the network by mistake fails fast.
const unusedServer = "http://127.0.0.1:1"

func TestTaskArgumentValidation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badJSON := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badJSON, []byte(`{"even_number": `), 0o600))
	id := sampleTaskUUID.String()

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"create without NAME", []string{"create", "ns"}, "missing NAME (usage: tasker task create NAMESPACE NAME [flags])"},
		{"create without arguments", []string{"create"}, "missing NAMESPACE"},
		{"get without UUID", []string{"get"}, "missing UUID (usage: tasker task get UUID [flags])"},
		{"get with two UUIDs", []string{"get", id, id}, `too many arguments: ["` + id + `"]`},
		{"retry-step without STEP", []string{"retry-step", id}, "missing STEP"},
		{"bad uuid", []string{"get", "nope"}, `"nope" is not a task UUID`},
		{"bad uuid for cancel", []string{"cancel", "1234"}, `"1234" is not a task UUID`},
		{"bad uuid for watch", []string{"watch", "x"}, `"x" is not a task UUID`},
		{"bad -o", []string{"get", id, "-o", "xml"}, `-o/--output: "xml" is not one of table, json, yaml`},
		{"bad -o for list", []string{"list", "-o", "csv"}, `-o/--output: "csv" is not one of table, json, yaml`},
		{"bad -o for create", []string{"create", "ns", "n", "-o", "wide"}, `"wide" is not one of`},
		{"bad --context", []string{"create", "ns", "n", "--context", `{"even_number": 6`}, "--context: not valid JSON: unexpected end of JSON input"},
		{"bad --context file", []string{"create", "ns", "n", "--context", "@" + badJSON}, "--context @" + badJSON + ": not valid JSON"},
		{"missing --context file", []string{"create", "ns", "n", "--context", "@" + filepath.Join(dir, "none.json")}, "none.json: no such file or directory"},
		{"bad --result", []string{"resolve-step", id, "s", "--result", "nope"}, "--result: not valid JSON"},
		{"bad --page", []string{"list", "--page", "0"}, "--page must be at least 1"},
		{"bad --interval", []string{"watch", id, "--interval", "0s"}, "--interval: must be positive"},
		{"bad --server", []string{"get", id, "--server", "localhost:8080"}, `--server: "localhost:8080" is not an http:// or https:// URL`},
		{"bad --timeout", []string{"get", id, "--timeout", "0s"}, "--timeout: must be positive"},
		{"missing --token-file", []string{"get", id, "--token-file", filepath.Join(dir, "token")}, "--token-file: open "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"task", "--server", unusedServer}, tc.args...)
			_, err := runTasker(t.Context(), t, args...)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestReadJSONArg(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "context.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"even_number": 6}`), 0o600))

	got, err := readJSONArg(nil, "--context", "@"+file)
	require.NoError(t, err)
	require.JSONEq(t, `{"even_number": 6}`, string(got))

	got, err = readJSONArg(strings.NewReader(`[1, 2]`), "--context", "@-")
	require.NoError(t, err)
	require.JSONEq(t, `[1, 2]`, string(got))

	got, err = readJSONArg(nil, "--context", "")
	require.NoError(t, err)
	require.Nil(t, got, "no context leaves the server's default")

	_, err = readJSONArg(strings.NewReader(`{`), "--context", "@-")
	require.ErrorContains(t, err, "--context @-: not valid JSON")
}

func TestTaskHelp(t *testing.T) {
	t.Parallel()
	out, err := runTasker(t.Context(), t, "task", "--help")
	require.NoError(t, err)
	for _, want := range []string{"create", "get", "list", "cancel", "watch", "retry-step", "resolve-step", "--server", "TASKER_SERVER", "--token", "TASKER_TOKEN", "--token-file", "--timeout"} {
		require.Contains(t, out, want)
	}
}

func TestConnectionRefusedNamesTheServer(t *testing.T) {
	t.Parallel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	server := "http://" + listener.Addr().String()
	require.NoError(t, listener.Close())

	_, err = runTasker(t.Context(), t, "task", "get", sampleTaskUUID.String(), "--server", server)
	require.ErrorContains(t, err, "cannot reach the tasker API at "+server+": connection refused")
	require.ErrorContains(t, err, "--server (or TASKER_SERVER)")
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "the cause stays reachable")
}

// TestTokenAndAPIErrors runs against a stand-in server that wants a bearer
// token and answers with an API error.
func TestTokenAndAPIErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error": {"code": "UNAUTHORIZED", "message": "a valid bearer token is required"}}`))
			return
		}
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(sampleTask())
	}))
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	id := sampleTaskUUID.String()

	_, err := runTasker(t.Context(), t, "task", "get", id, "--server", srv.URL)
	require.EqualError(t, err, "401 UNAUTHORIZED: a valid bearer token is required")

	out, err := runTasker(t.Context(), t, "task", "get", id, "--server", srv.URL, "--token-file", tokenFile)
	require.NoError(t, err)
	require.Equal(t, renderTask(sampleTask()), out)

	out, err = runTasker(t.Context(), t, "task", "get", id, "--server", srv.URL, "--token", "s3cret", "-o", "json")
	require.NoError(t, err)
	require.Contains(t, out, `"task_uuid": "`+id+`"`)
}
