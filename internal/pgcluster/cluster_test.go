package pgcluster

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// startCluster starts a cluster with cfg and stops it when the test ends.
func startCluster(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	c, err := Start(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop()) })
	return c
}

// connect opens a connection to database postgres of c, closed when the test
// ends.
func connect(t *testing.T, c *Cluster) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), c.URL("postgres"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// show returns the value of a setting as SHOW prints it.
func show(t *testing.T, conn *pgx.Conn, name string) string {
	t.Helper()
	var value string
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_setting($1)", name).Scan(&value))
	return value
}

// sharedParent returns a fresh parent directory that the server's OS user
// can traverse (t.TempDir is private to this process's user).
func sharedParent(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

func TestStart(t *testing.T) {
	t.Parallel()

	t.Run("ServesQueriesAndStopRemovesEverything", func(t *testing.T) {
		t.Parallel()
		c, err := Start(t.Context(), Config{Dir: sharedParent(t)})
		require.NoError(t, err)
		require.NotZero(t, c.Port())
		require.Contains(t, c.URL("app"), "127.0.0.1:")
		require.DirExists(t, c.Dir())

		conn, err := pgx.Connect(t.Context(), c.URL("postgres"))
		require.NoError(t, err)
		var sum int
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT 40 + 2").Scan(&sum))
		require.Equal(t, 42, sum)
		require.NoError(t, conn.Close(t.Context()))

		require.NoError(t, c.Stop())
		require.NoDirExists(t, c.Dir())
		require.True(t, c.hasExited())
		require.NoError(t, c.Stop(), "Stop is idempotent")
	})

	t.Run("FastSettingsByDefault", func(t *testing.T) {
		t.Parallel()
		c := startCluster(t, Config{})
		conn := connect(t, c)
		for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
			require.Equal(t, "off", show(t, conn, name), name)
			require.Equal(t, "off", c.Settings()[name], name)
		}
		require.Equal(t, "300", show(t, conn, "max_connections"))
		require.Equal(t, "128MB", c.Settings()["shared_buffers"])
		require.Equal(t, "127.0.0.1", show(t, conn, "listen_addresses"))
		require.Equal(t, filepath.Join(c.Dir(), socketDirName), show(t, conn, "unix_socket_directories"))
		require.NotEmpty(t, c.Version())
	})

	t.Run("DurableKeepsFsync", func(t *testing.T) {
		t.Parallel()
		c := startCluster(t, Config{Durable: true})
		conn := connect(t, c)
		for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
			require.Equal(t, "on", show(t, conn, name), name)
			require.Equal(t, "on", c.Settings()[name], name)
		}
	})

	t.Run("DeepDirServesTCPOnly", func(t *testing.T) {
		t.Parallel()
		deep := filepath.Join(sharedParent(t), strings.Repeat("d", 100))
		require.NoError(t, os.Mkdir(deep, 0o755))
		c := startCluster(t, Config{Dir: deep})
		require.Empty(t, show(t, connect(t, c), "unix_socket_directories"),
			"a socket path longer than 107 bytes is impossible")
	})

	t.Run("ExtraSettingsApplied", func(t *testing.T) {
		t.Parallel()
		c := startCluster(t, Config{Settings: map[string]string{"work_mem": "8MB", "fsync": "on"}})
		conn := connect(t, c)
		require.Equal(t, "8MB", show(t, conn, "work_mem"))
		require.Equal(t, "8MB", c.Settings()["work_mem"])
		require.Equal(t, "on", show(t, conn, "fsync"), "Settings override the defaults")
	})
}

func TestStartFailures(t *testing.T) {
	t.Parallel()

	t.Run("TakenFixedPortFailsAndCleansUp", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		parent := sharedParent(t)

		_, err = Start(t.Context(), Config{Dir: parent, Port: l.Addr().(*net.TCPAddr).Port})
		require.ErrorIs(t, err, errPortInUse)
		entries, err := os.ReadDir(parent)
		require.NoError(t, err)
		require.Empty(t, entries, "the cluster directory is removed")
	})

	t.Run("PortOfAnotherServer", func(t *testing.T) {
		t.Parallel()
		other := startCluster(t, Config{})
		_, err := Start(t.Context(), Config{Port: other.Port()})
		require.ErrorIs(t, err, errPortInUse)
		require.Equal(t, "off", show(t, connect(t, other), "fsync"), "the other server is unharmed")
	})

	t.Run("UnreachableDir", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() != 0 {
			t.Skip("only a root process hands the server to another user")
		}
		_, err := Start(t.Context(), Config{Dir: t.TempDir()})
		require.ErrorContains(t, err, "cannot enter")
	})

	t.Run("BadBinDir", func(t *testing.T) {
		t.Parallel()
		_, err := Start(t.Context(), Config{BinDir: t.TempDir()})
		require.ErrorContains(t, err, "initdb")
	})
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()

	require.Equal(t, os.TempDir(), Config{Durable: true}.withDefaults().Dir, "durable data stays on disk")
	fast := Config{}.withDefaults()
	if usableMemoryDir(memoryDir) {
		require.Equal(t, memoryDir, fast.Dir)
	} else {
		require.Equal(t, os.TempDir(), fast.Dir)
	}
	require.Equal(t, "/data", Config{Dir: "/data"}.withDefaults().Dir)
	require.Equal(t, DefaultStartTimeout, fast.StartTimeout)
	require.Equal(t, DefaultRunAs, fast.RunAs)
	require.NotNil(t, fast.Logger)
}

func TestServerSettings(t *testing.T) {
	t.Parallel()

	fast := Config{}.serverSettings()
	require.Equal(t, "off", fast["fsync"])
	require.Equal(t, "off", fast["synchronous_commit"])
	require.Equal(t, "off", fast["full_page_writes"])
	require.Equal(t, "300", fast["max_connections"])

	durable := Config{Durable: true}.serverSettings()
	require.NotContains(t, durable, "fsync")
	require.NotContains(t, durable, "synchronous_commit")

	custom := Config{Settings: map[string]string{"max_connections": "50"}}.serverSettings()
	require.Equal(t, "50", custom["max_connections"])
}

func TestFindBinDir(t *testing.T) {
	t.Parallel()
	dir, err := FindBinDir()
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(dir, "postgres"))
	require.FileExists(t, filepath.Join(dir, "initdb"))
}
