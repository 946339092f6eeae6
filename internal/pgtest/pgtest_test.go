package pgtest

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

// adminServer returns the process's shared server.
func adminServer(t *testing.T) *server {
	t.Helper()
	srv, err := sharedServer()
	require.NoError(t, err)
	return srv
}

// databaseExists reports whether the server of srv has database name.
func databaseExists(t *testing.T, srv *server, name string) bool {
	t.Helper()
	var exists bool
	err := srv.admin.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	require.NoError(t, err)
	return exists
}

// tableExists reports whether the database of pool has table name.
func tableExists(t *testing.T, db *Database, name string) bool {
	t.Helper()
	var exists bool
	err := db.Pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists)
	require.NoError(t, err)
	return exists
}

func TestNewEmptyDatabase(t *testing.T) {
	t.Parallel()

	t.Run("ParallelTestsGetTheirOwnDatabase", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		names := map[string]bool{}
		t.Run("group", func(t *testing.T) {
			for _, name := range []string{"a", "b", "c", "d"} {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					db := NewEmptyDatabase(t)
					_, err := db.Pool.Exec(t.Context(), "CREATE TABLE marker (test text); INSERT INTO marker VALUES ('"+name+"')")
					require.NoError(t, err, "a table of the same name in another test's database does not clash")
					var count int
					require.NoError(t, db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM marker").Scan(&count))
					require.Equal(t, 1, count)
					mu.Lock()
					names[db.Name] = true
					mu.Unlock()
				})
			}
		})
		require.Len(t, names, 4, "four distinct databases")
		for name := range names {
			require.False(t, databaseExists(t, adminServer(t), name), "dropped after its test: %s", name)
		}
	})

	t.Run("TablesInvisibleAcrossDatabases", func(t *testing.T) {
		t.Parallel()
		a, b := NewEmptyDatabase(t), NewEmptyDatabase(t)
		require.NotEqual(t, a.Name, b.Name)
		_, err := a.Pool.Exec(t.Context(), "CREATE TABLE widgets (id int)")
		require.NoError(t, err)
		require.True(t, tableExists(t, a, "widgets"))
		require.False(t, tableExists(t, b, "widgets"))
		require.False(t, tableExists(t, a, "tasker.schema_migrations"), "an empty database has no schema")
	})

	t.Run("DroppedDespiteOpenConnections", func(t *testing.T) {
		t.Parallel()
		var name string
		var leftOpen *pgx.Conn
		t.Run("test", func(t *testing.T) {
			db := NewEmptyDatabase(t)
			name = db.Name
			require.Regexp(t, `^tasker_test_[0-9a-f]{16}$`, db.Name)
			require.True(t, databaseExists(t, adminServer(t), name))
			conn, err := pgx.Connect(context.Background(), db.URL)
			require.NoError(t, err)
			require.NoError(t, conn.Ping(t.Context()))
			leftOpen = conn // still open when the test's cleanup drops the database
		})
		if leftOpen != nil {
			_ = leftOpen.Close(context.Background())
		}
		require.False(t, databaseExists(t, adminServer(t), name))
	})
}

func TestNewDatabase(t *testing.T) {
	t.Parallel()

	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := NewDatabase(t)
			var version int
			err := db.Pool.QueryRow(t.Context(), "SELECT max(version) FROM tasker.schema_migrations").Scan(&version)
			require.NoError(t, err)
			require.Positive(t, version)

			sch, err := loadTaskerSchema()
			require.NoError(t, err)
			var isTemplate bool
			err = adminServer(t).admin.QueryRow(t.Context(),
				"SELECT datistemplate FROM pg_database WHERE datname = $1", templateName(sch.fingerprint)).Scan(&isTemplate)
			require.NoError(t, err)
			require.True(t, isTemplate)
		})
	}
}

func TestDatabaseURL(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, admin, want string
	}{
		{"URL", "postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/db1?sslmode=disable"},
		{"URLWithoutDatabase", "postgresql://h", "postgresql://h/db1"},
		{"KeywordValue", "host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=db1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, databaseURL(tt.admin, "db1"))
		})
	}
}

func BenchmarkNewDatabase(b *testing.B) {
	for b.Loop() {
		NewDatabase(b)
	}
}

func BenchmarkNewEmptyDatabase(b *testing.B) {
	for b.Loop() {
		NewEmptyDatabase(b)
	}
}
