package api

import (
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Token: "s3cret"})

	t.Run("NoToken", func(t *testing.T) {
		for _, path := range []string{"/v1/tasks", "/v1/templates", "/v1/no/such/route"} {
			a := b.request(t, http.MethodGet, path, "")
			e := requireError(t, a, http.StatusUnauthorized, CodeUnauthorized)
			require.Contains(t, e.Message, "Bearer")
			require.Equal(t, `Bearer realm="tasker"`, a.header.Get("WWW-Authenticate"), path)
		}
	})
	t.Run("WrongToken", func(t *testing.T) {
		for _, header := range []string{"Bearer s3cre", "Bearer s3cret2", "Basic czNjcmV0", "s3cret"} {
			a := b.request(t, http.MethodGet, "/v1/tasks", "", "Authorization", header)
			requireError(t, a, http.StatusUnauthorized, CodeUnauthorized)
			require.NotEmpty(t, a.header.Get("WWW-Authenticate"), header)
		}
		a := b.request(t, http.MethodPost, "/v1/tasks", `{}`, "Authorization", "Bearer wrong")
		requireError(t, a, http.StatusUnauthorized, CodeUnauthorized)
		require.Contains(t, a.header.Get("WWW-Authenticate"), `error="invalid_token"`)
	})
	t.Run("RightToken", func(t *testing.T) {
		a := b.request(t, http.MethodGet, "/v1/tasks", "", "Authorization", "Bearer s3cret")
		require.Equal(t, http.StatusOK, a.status)
		a = b.request(t, http.MethodGet, "/v1/tasks", "", "Authorization", "bearer s3cret")
		require.Equal(t, http.StatusOK, a.status, "the scheme is case-insensitive")
		_, err := b.client.ListTasks(t.Context(), ListOptions{})
		require.NoError(t, err, "the client sends its token")
	})
	t.Run("OpenRoutes", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
			require.Equal(t, http.StatusOK, b.request(t, http.MethodGet, path, "").status, path)
		}
	})
}

func TestNoAuthWithoutToken(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	require.Equal(t, http.StatusOK, b.request(t, http.MethodGet, "/v1/tasks", "").status)
	require.Equal(t, http.StatusOK, b.request(t, http.MethodGet, "/v1/tasks", "", "Authorization", "Bearer anything").status)
}

func TestRouting(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})

	a := b.request(t, http.MethodPut, "/v1/tasks", `{}`)
	e := requireError(t, a, http.StatusMethodNotAllowed, CodeMethodNotAllowed)
	require.Contains(t, e.Message, "PUT is not allowed on /v1/tasks")
	require.Contains(t, a.header.Get("Allow"), "POST")
	require.Contains(t, a.header.Get("Allow"), "GET")

	requireError(t, b.request(t, http.MethodPost, "/healthz", ""), http.StatusMethodNotAllowed, CodeMethodNotAllowed)
	e = requireError(t, b.request(t, http.MethodGet, "/v2/tasks", ""), http.StatusNotFound, CodeNotFound)
	require.Contains(t, e.Message, "GET /v2/tasks")
	requireError(t, b.request(t, http.MethodGet, "/v1/tasks/x/y", ""), http.StatusNotFound, CodeNotFound)
	requireError(t, b.request(t, http.MethodGet, "/", ""), http.StatusNotFound, CodeNotFound)

	require.Contains(t, b.logs.String(), "route=unmatched", "unmatched requests are logged")
	require.Contains(t, b.logs.String(), `msg="http request" method=PUT route=unmatched path=/v1/tasks status=405`)
}

func TestRecoverFromPanic(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{}, func(s *Server) {
		panicking := route{http.MethodGet, "/test/panic", func(http.ResponseWriter, *http.Request) error {
			panic("kaboom")
		}}
		s.handler = s.build(append(s.routes(), panicking))
	})

	e := requireError(t, b.request(t, http.MethodGet, "/test/panic", ""), http.StatusInternalServerError, CodeInternal)
	require.Equal(t, "internal server error", e.Message, "the panic is not shown to the client")
	require.Contains(t, b.logs.String(), "handler panicked")
	require.Contains(t, b.logs.String(), "panic=kaboom")
	require.Equal(t, http.StatusOK, b.request(t, http.MethodGet, "/healthz", "").status, "the server still serves")
}

func TestProbes(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	require.JSONEq(t, `{"status": "ok"}`, string(b.request(t, http.MethodGet, "/healthz", "").body))
	require.JSONEq(t, `{"status": "ready"}`, string(b.request(t, http.MethodGet, "/readyz", "").body))
	require.NoError(t, b.client.Ready(t.Context()))
	require.Contains(t, b.logs.String(), `msg="http request" method=GET route=/readyz path=/readyz status=200 duration=`)

	t.Run("DatabaseDown", func(t *testing.T) {
		pool, err := pgxpool.New(t.Context(), b.db.URL)
		require.NoError(t, err)
		pool.Close()
		down := setup(t, Config{}, func(s *Server) { s.pool = pool })
		e := requireError(t, down.request(t, http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, CodeNotReady)
		require.Contains(t, e.Message, "the database check failed")
		require.Equal(t, http.StatusOK, down.request(t, http.MethodGet, "/healthz", "").status, "alive while not ready")

		err = down.client.Ready(t.Context())
		var apiErr *Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusServiceUnavailable, apiErr.Status)
		require.Equal(t, CodeNotReady, apiErr.Code)
	})
}
