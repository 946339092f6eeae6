package migrate_test

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/taskerops/tasker/internal/pgtest"
	"github.com/taskerops/tasker/orchestration/migrate"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// engineTables are the tables migration 2 creates in schema tasker.
var engineTables = []string{
	"dead_letters", "namespaces", "step_transitions", "task_transitions", "tasks",
	"template_edges", "template_steps", "templates", "workflow_step_edges", "workflow_steps",
}

func newMigrator(t *testing.T) *migrate.Migrator {
	t.Helper()
	m, err := migrate.New()
	require.NoError(t, err)
	return m
}

// taskerTables lists the tables of schema tasker, sorted.
func taskerTables(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
		SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = 'tasker' ORDER BY table_name`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return tables
}

func schemaExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var exists bool
	require.NoError(t, pool.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&exists))
	return exists
}

// recordedVersions lists the versions in tasker.schema_migrations.
func recordedVersions(t *testing.T, pool *pgxpool.Pool) []int {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT version FROM tasker.schema_migrations ORDER BY version")
	require.NoError(t, err)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	out := make([]int, len(versions))
	for i, v := range versions {
		out[i] = int(v)
	}
	return out
}

func versionsOf(applied []migrate.Applied, direction migrate.Direction) []int {
	out := make([]int, len(applied))
	for i, a := range applied {
		if a.Direction != direction {
			return nil
		}
		out[i] = a.Version
	}
	return out
}

func upTo(latest int) []int {
	out := make([]int, latest)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func requireCurrent(t *testing.T, m *migrate.Migrator, pool *pgxpool.Pool, want int) {
	t.Helper()
	current, err := m.Current(t.Context(), pool)
	require.NoError(t, err)
	require.Equal(t, want, current)
}

func TestMigratorUpDown(t *testing.T) {
	t.Parallel()

	t.Run("UpDownToZeroAndUpAgain", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewEmptyDatabase(t)
		m := newMigrator(t)
		latest := m.Latest()
		require.GreaterOrEqual(t, latest, 2)
		requireCurrent(t, m, db.Pool, 0)

		applied, err := m.Up(t.Context(), db.Pool)
		require.NoError(t, err)
		require.Equal(t, upTo(latest), versionsOf(applied, migrate.DirectionUp))
		require.Equal(t, "pgmq", applied[0].Name)
		require.NotEmpty(t, applied[0].Note, "says how the queue layer was installed")
		t.Logf("migration 1: %s", applied[0].Note)
		requireCurrent(t, m, db.Pool, latest)
		require.Equal(t, upTo(latest), recordedVersions(t, db.Pool))
		require.Subset(t, taskerTables(t, db.Pool), append(slices.Clone(engineTables), "schema_migrations"))
		require.True(t, schemaExists(t, db.Pool, "pgmq"))

		again, err := m.Up(t.Context(), db.Pool)
		require.NoError(t, err)
		require.Empty(t, again, "nothing left to apply")

		// A namespace queue created at run time goes with the schema too.
		_, err = db.Pool.Exec(t.Context(), `
			INSERT INTO tasker.namespaces (name, queue_name) VALUES ('shop', 'shop_queue');
			SELECT pgmq.create('shop_queue');
			SELECT pgmq.send('shop_queue', '{"n": 1}');`)
		require.NoError(t, err)

		reverted, err := m.Down(t.Context(), db.Pool, 0)
		require.NoError(t, err)
		wantDown := upTo(latest)
		slices.Reverse(wantDown)
		require.Equal(t, wantDown, versionsOf(reverted, migrate.DirectionDown), "newest first")
		require.Equal(t, []string{"schema_migrations"}, taskerTables(t, db.Pool), "only the bookkeeping table stays")
		require.Empty(t, recordedVersions(t, db.Pool))
		require.False(t, schemaExists(t, db.Pool, "pgmq"))
		var leftovers int
		require.NoError(t, db.Pool.QueryRow(t.Context(), `
			SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			        WHERE n.nspname = 'tasker' AND c.relname NOT LIKE 'schema_migrations%')
			     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			        WHERE n.nspname = 'tasker')
			     + (SELECT count(*) FROM pg_extension WHERE extname = 'pgmq')`).Scan(&leftovers))
		require.Zero(t, leftovers, "no relation, function or extension left behind")
		requireCurrent(t, m, db.Pool, 0)

		applied, err = m.Up(t.Context(), db.Pool)
		require.NoError(t, err)
		require.Equal(t, upTo(latest), versionsOf(applied, migrate.DirectionUp))
		require.Subset(t, taskerTables(t, db.Pool), engineTables)
		requireCurrent(t, m, db.Pool, latest)
	})

	t.Run("DownToOneKeepsTheQueueLayerOnly", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewEmptyDatabase(t)
		m := newMigrator(t)
		_, err := m.Up(t.Context(), db.Pool)
		require.NoError(t, err)

		reverted, err := m.Down(t.Context(), db.Pool, 1)
		require.NoError(t, err)
		require.Len(t, reverted, m.Latest()-1)
		require.Equal(t, []int{1}, recordedVersions(t, db.Pool))
		requireCurrent(t, m, db.Pool, 1)
		require.Equal(t, []string{"schema_migrations"}, taskerTables(t, db.Pool), "no engine table")
		require.True(t, schemaExists(t, db.Pool, "pgmq"))
		var queues int
		require.NoError(t, db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM pgmq.list_queues()").Scan(&queues))
		require.Zero(t, queues, "the engine's queues went with migration 2")

		// The queue layer still works.
		_, err = db.Pool.Exec(t.Context(), "SELECT pgmq.create('still_works'); SELECT pgmq.send('still_works', '{}')")
		require.NoError(t, err)

		reverted, err = m.Down(t.Context(), db.Pool, 1)
		require.NoError(t, err)
		require.Empty(t, reverted, "already at the target")

		applied, err := m.Up(t.Context(), db.Pool)
		require.NoError(t, err)
		require.Equal(t, upTo(m.Latest())[1:], versionsOf(applied, migrate.DirectionUp))
	})

	t.Run("DownPastSixDropsOrphanedStepsAndRestoresTheKey", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewEmptyDatabase(t)
		m := newMigrator(t)
		_, err := m.Up(t.Context(), db.Pool)
		require.NoError(t, err)
		ctx := t.Context()
		// A task with a step, and a step whose task was deleted without it,
		// which migration 6 allows.
		_, err = db.Pool.Exec(ctx, `
INSERT INTO tasker.namespaces (name, queue_name) VALUES ('mig', 'mig_queue');
INSERT INTO tasker.templates (namespace_name, name, version, identity_strategy, definition, fingerprint)
VALUES ('mig', 'flow', '1.0.0', 'always_unique', '{}', 'f');
INSERT INTO tasker.tasks (task_uuid, template_id, namespace_name, name, version, state, context, identity_hash,
    correlation_id, step_count)
SELECT u, t.template_id, 'mig', 'flow', '1.0.0', 'steps_in_process', '{}', u::text, u, 1
FROM tasker.templates t, (VALUES ('00000000-0000-0000-0000-000000000001'::uuid), ('00000000-0000-0000-0000-000000000002'::uuid)) v (u);
INSERT INTO tasker.workflow_steps (step_uuid, task_uuid, name, position, handler_callable, retryable, max_attempts,
    backoff, backoff_base_ms, max_backoff_ms, jitter_percent, timeout_seconds, unmet_dependencies)
SELECT gen_random_uuid(), task_uuid, 'only', 0, 'h', true, 3, 'exponential', 10, 100, 0, 30, 0 FROM tasker.tasks;
DELETE FROM tasker.tasks WHERE task_uuid = '00000000-0000-0000-0000-000000000002'`)
		require.NoError(t, err)

		_, err = m.Down(ctx, db.Pool, 5)
		require.NoError(t, err)
		rows, err := db.Pool.Query(ctx, "SELECT task_uuid::text FROM tasker.workflow_steps")
		require.NoError(t, err)
		steps, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, []string{"00000000-0000-0000-0000-000000000001"}, steps, "the orphaned step is gone, the other kept")
		_, err = db.Pool.Exec(ctx, "DELETE FROM tasker.tasks")
		require.NoError(t, err)
		var left int
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM tasker.workflow_steps").Scan(&left))
		require.Zero(t, left, "the key is back, with its cascade")

		_, err = m.Up(ctx, db.Pool)
		require.NoError(t, err)
		requireCurrent(t, m, db.Pool, m.Latest())
	})

	t.Run("ConcurrentUpAppliesEachMigrationOnce", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewEmptyDatabase(t)
		const n = 4
		applied := make([][]migrate.Applied, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				// Each goroutine is a process of its own: its own migrator and pool.
				pool, err := pgxpool.New(context.Background(), db.URL)
				if err != nil {
					errs[i] = err
					return
				}
				defer pool.Close()
				m, err := migrate.New()
				if err != nil {
					errs[i] = err
					return
				}
				applied[i], errs[i] = m.Up(t.Context(), pool)
			})
		}
		wg.Wait()
		var all []int
		for i := range n {
			require.NoError(t, errs[i], "goroutine %d", i)
			all = append(all, versionsOf(applied[i], migrate.DirectionUp)...)
		}
		slices.Sort(all)
		latest := newMigrator(t).Latest()
		require.Equal(t, upTo(latest), all, "every migration applied by exactly one process")
		require.Equal(t, upTo(latest), recordedVersions(t, db.Pool))
	})

	t.Run("DownTargetOutOfRangeIsRefused", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewEmptyDatabase(t)
		m := newMigrator(t)
		_, err := m.Up(t.Context(), db.Pool)
		require.NoError(t, err)
		for _, target := range []int{-1, m.Latest() + 1} {
			reverted, err := m.Down(t.Context(), db.Pool, target)
			require.ErrorContains(t, err, fmt.Sprintf("target version %d is outside 0..%d", target, m.Latest()))
			require.Empty(t, reverted)
		}
		requireCurrent(t, m, db.Pool, m.Latest())
	})

	t.Run("UpRefusesADatabaseNewerThanTheBinary", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewEmptyDatabase(t)
		m := newMigrator(t)
		_, err := m.Up(t.Context(), db.Pool)
		require.NoError(t, err)
		_, err = db.Pool.Exec(t.Context(), "INSERT INTO tasker.schema_migrations (version, name) VALUES ($1, 'future')", m.Latest()+1)
		require.NoError(t, err)
		_, err = m.Up(t.Context(), db.Pool)
		require.ErrorContains(t, err, "newer than this binary")
	})
}

// migrationFS builds a migration directory "m" from file name → body.
func migrationFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{"m": &fstest.MapFile{Mode: fs.ModeDir | 0o755}}
	for name, body := range files {
		fsys["m/"+name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

func goodFiles() map[string]string {
	return map[string]string{
		"0001_first.up.sql":    "-- tasker:prefer-extension demo_ext\nCREATE TABLE a (id int);",
		"0001_first.down.sql":  "DROP TABLE a;",
		"0002_second.up.sql":   "CREATE TABLE b (id int);\n-- tasker:prefer-extension ignored_not_first_line",
		"0002_second.down.sql": "DROP TABLE b;",
	}
}

func TestNewFromFS(t *testing.T) {
	t.Parallel()

	t.Run("GoodSetLoadsInOrder", func(t *testing.T) {
		t.Parallel()
		m, err := migrate.NewFromFS(migrationFS(goodFiles()), "m")
		require.NoError(t, err)
		require.Equal(t, 2, m.Latest())
		migs := m.Migrations()
		require.Len(t, migs, 2)
		require.Equal(t, migrate.Migration{
			Version: 1, Name: "first",
			Up:              "-- tasker:prefer-extension demo_ext\nCREATE TABLE a (id int);",
			Down:            "DROP TABLE a;",
			PreferExtension: "demo_ext",
		}, migs[0])
		require.Equal(t, 2, migs[1].Version)
		require.Equal(t, "second", migs[1].Name)
		require.Empty(t, migs[1].PreferExtension, "the directive counts only on the first line")
	})

	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{
			name: "Gap",
			files: map[string]string{
				"0001_a.up.sql": "SELECT 1", "0001_a.down.sql": "SELECT 1",
				"0003_c.up.sql": "SELECT 1", "0003_c.down.sql": "SELECT 1",
			},
			want: "migration versions must run 1..N without gaps: expected 0002, found 0003",
		},
		{
			name:  "NotStartingAtOne",
			files: map[string]string{"0002_b.up.sql": "SELECT 1", "0002_b.down.sql": "SELECT 1"},
			want:  "expected 0001, found 0002",
		},
		{
			name:  "VersionZero",
			files: map[string]string{"0000_z.up.sql": "SELECT 1", "0000_z.down.sql": "SELECT 1"},
			want:  "expected 0001, found 0000",
		},
		{
			name:  "TwoNamesForOneVersion",
			files: map[string]string{"0001_a.up.sql": "SELECT 1", "0001_b.down.sql": "SELECT 1"},
			want:  `migration 0001 has two names: "a" and "b"`,
		},
		{
			name:  "MissingDownFile",
			files: map[string]string{"0001_a.up.sql": "SELECT 1"},
			want:  "migration 0001_a needs a non-empty up and down file",
		},
		{
			name:  "MissingUpFile",
			files: map[string]string{"0001_a.down.sql": "SELECT 1"},
			want:  "migration 0001_a needs a non-empty up and down file",
		},
		{
			name:  "EmptyFile",
			files: map[string]string{"0001_a.up.sql": "SELECT 1", "0001_a.down.sql": ""},
			want:  "migration 0001_a needs a non-empty up and down file",
		},
		{
			name:  "BlankFile",
			files: map[string]string{"0001_a.up.sql": " \n\t\n", "0001_a.down.sql": "SELECT 1"},
			want:  "migration 0001_a needs a non-empty up and down file",
		},
		{
			name:  "NameWithoutDirection",
			files: map[string]string{"0001_a.sql": "SELECT 1"},
			want:  `migration file "0001_a.sql": name must look like 0001_name.up.sql or 0001_name.down.sql`,
		},
		{
			name:  "ShortVersion",
			files: map[string]string{"1_a.up.sql": "SELECT 1"},
			want:  `migration file "1_a.up.sql": name must look like`,
		},
		{
			name:  "CapitalsInName",
			files: map[string]string{"0001_Init.up.sql": "SELECT 1"},
			want:  `migration file "0001_Init.up.sql": name must look like`,
		},
		{
			name: "StrayFile",
			files: map[string]string{
				"0001_a.up.sql": "SELECT 1", "0001_a.down.sql": "SELECT 1", "README.md": "notes",
			},
			want: `migration file "README.md": name must look like`,
		},
		{
			name:  "NoMigrations",
			files: map[string]string{},
			want:  "no migrations found",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := migrate.NewFromFS(migrationFS(tc.files), "m")
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, m)
		})
	}

	t.Run("MissingDirectory", func(t *testing.T) {
		t.Parallel()
		_, err := migrate.NewFromFS(fstest.MapFS{}, "nowhere")
		require.ErrorContains(t, err, "reading migrations")
	})

	t.Run("FingerprintFollowsContent", func(t *testing.T) {
		t.Parallel()
		load := func(files map[string]string) string {
			m, err := migrate.NewFromFS(migrationFS(files), "m")
			require.NoError(t, err)
			return m.Fingerprint()
		}
		base := load(goodFiles())
		require.Len(t, base, 64, "hex sha256")
		require.Equal(t, base, load(goodFiles()), "the same files, the same fingerprint")

		for file, body := range map[string]string{
			"0001_first.up.sql":    "-- tasker:prefer-extension demo_ext\nCREATE TABLE a (id bigint);",
			"0002_second.down.sql": "DROP TABLE b; -- changed",
		} {
			files := goodFiles()
			files[file] = body
			require.NotEqual(t, base, load(files), "changing %s changes the fingerprint", file)
		}

		renamed := goodFiles()
		renamed["0002_other.up.sql"], renamed["0002_other.down.sql"] = renamed["0002_second.up.sql"], renamed["0002_second.down.sql"]
		delete(renamed, "0002_second.up.sql")
		delete(renamed, "0002_second.down.sql")
		require.NotEqual(t, base, load(renamed), "renaming a migration changes the fingerprint")
	})

	t.Run("EmbeddedMigrations", func(t *testing.T) {
		t.Parallel()
		m := newMigrator(t)
		migs := m.Migrations()
		require.Equal(t, len(migs), m.Latest())
		require.Equal(t, "pgmq", migs[0].PreferExtension, "the queue layer prefers the pgmq extension")
		for _, mig := range migs[1:] {
			require.Empty(t, mig.PreferExtension, "migration %d", mig.Version)
		}
		require.Equal(t, m.Fingerprint(), newMigrator(t).Fingerprint(), "stable across loads")

		migs[0].Up = "changed"
		require.NotEqual(t, "changed", m.Migrations()[0].Up, "Migrations returns a copy")
	})
}
