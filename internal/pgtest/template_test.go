package pgtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgcluster"
)

// fakeSchema is a one-table schema with a fingerprint of its own, counting
// how often it is applied.
type fakeSchema struct {
	schema
	applied *atomic.Int32
}

// newFakeSchema returns a fake schema whose template is dropped when the test
// ends.
func newFakeSchema(t *testing.T, srv *server) fakeSchema {
	t.Helper()
	applied := &atomic.Int32{}
	fingerprint := randomName("")
	apply := func(ctx context.Context, pool *pgxpool.Pool) error {
		applied.Add(1)
		_, err := pool.Exec(ctx, "CREATE TABLE widgets (id int); INSERT INTO widgets VALUES (1)")
		return err
	}
	t.Cleanup(func() {
		name := quote(templateName(fingerprint))
		ctx := context.Background()
		_, _ = srv.admin.Exec(ctx, "ALTER DATABASE "+name+" WITH IS_TEMPLATE false")
		_, err := srv.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		require.NoError(t, err)
	})
	return fakeSchema{schema: schema{fingerprint: fingerprint, apply: apply}, applied: applied}
}

// createFrom creates a database from template and drops it when the test
// ends.
func createFrom(t *testing.T, srv *server, template string) *Database {
	t.Helper()
	db, err := srv.createDatabase(t.Context(), template)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.dropDatabase(context.Background(), db)) })
	return db
}

func TestTemplate(t *testing.T) {
	t.Parallel()

	t.Run("DatabasesStartFromTheTemplate", func(t *testing.T) {
		t.Parallel()
		srv := adminServer(t)
		sch := newFakeSchema(t, srv)
		template, err := srv.template(t.Context(), sch.schema)
		require.NoError(t, err)
		require.Equal(t, templateNamePrefix+sch.fingerprint[:12], template)

		for range 2 {
			db := createFrom(t, srv, template)
			var count int
			require.NoError(t, db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM widgets").Scan(&count))
			require.Equal(t, 1, count)
		}
	})

	t.Run("BuiltOncePerFingerprintAndServer", func(t *testing.T) {
		t.Parallel()
		srv := adminServer(t)
		sch := newFakeSchema(t, srv)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = srv.template(context.Background(), sch.schema) })
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))

		// Another process sharing the server finds the template built.
		other, err := connectServer(t.Context(), srv.adminURL, nil)
		require.NoError(t, err)
		defer other.close()
		_, err = other.template(t.Context(), sch.schema)
		require.NoError(t, err)
		require.EqualValues(t, 1, sch.applied.Load())
	})

	t.Run("IncompleteTemplateRebuilt", func(t *testing.T) {
		t.Parallel()
		srv := adminServer(t)
		sch := newFakeSchema(t, srv)
		name := templateName(sch.fingerprint)
		_, err := srv.admin.Exec(t.Context(), "CREATE DATABASE "+quote(name))
		require.NoError(t, err, "the remains of a build that failed half-way")

		template, err := srv.template(t.Context(), sch.schema)
		require.NoError(t, err)
		require.True(t, tableExists(t, createFrom(t, srv, template), "widgets"))
		require.EqualValues(t, 1, sch.applied.Load())
	})
}

func TestSelectServer(t *testing.T) {
	t.Parallel()

	t.Run("ExternalServerUsedAsIs", func(t *testing.T) {
		t.Parallel()
		cluster, err := pgcluster.Start(t.Context(), pgcluster.Config{})
		require.NoError(t, err)
		defer func() { require.NoError(t, cluster.Stop()) }()

		srv, err := selectServer(t.Context(), cluster.URL("postgres"))
		require.NoError(t, err)
		require.Nil(t, srv.cluster, "no cluster started")
		db, err := srv.createDatabase(t.Context(), "")
		require.NoError(t, err)
		require.Equal(t, cluster.URL(db.Name), db.URL)
		require.True(t, databaseExists(t, srv, db.Name))
		require.NoError(t, srv.dropDatabase(t.Context(), db))
		require.NoError(t, srv.close())

		conn, err := pgxpool.New(t.Context(), cluster.URL("postgres"))
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.Ping(t.Context()), "closing the server leaves the external cluster running")
	})

	t.Run("StartsAClusterWithoutURL", func(t *testing.T) {
		t.Parallel()
		srv, err := selectServer(t.Context(), "")
		require.NoError(t, err)
		require.NotNil(t, srv.cluster)
		require.NoError(t, srv.close())
		require.NoDirExists(t, srv.cluster.Dir())
	})
}
