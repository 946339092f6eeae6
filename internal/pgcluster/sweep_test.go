package pgcluster

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// crashParentEnv, when set, makes TestCrashHelper start a cluster in that
// directory and kill its own process.
const crashParentEnv = "PGCLUSTER_TEST_CRASH_PARENT"

// deadPID returns the id of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

// makeClusterDir creates parent/name, with an owner file holding ownerPID
// unless it is 0.
func makeClusterDir(t *testing.T, parent, name string, ownerPID int) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	require.NoError(t, os.Mkdir(dir, 0o700))
	if ownerPID != 0 {
		pid := []byte(strconv.Itoa(ownerPID))
		require.NoError(t, os.WriteFile(filepath.Join(dir, ownerFileName), pid, 0o644))
	}
	return dir
}

func TestSweep(t *testing.T) {
	t.Parallel()

	t.Run("RemovesOnlyDirsOfDeadOwners", func(t *testing.T) {
		t.Parallel()
		parent := t.TempDir()
		dead := makeClusterDir(t, parent, dirPrefix+"dead", deadPID(t))
		live := makeClusterDir(t, parent, dirPrefix+"live", os.Getpid())
		unowned := makeClusterDir(t, parent, dirPrefix+"new", 0)
		other := makeClusterDir(t, parent, "other", deadPID(t))

		sweep(parent, slog.Default())

		require.NoDirExists(t, dead)
		require.DirExists(t, live)
		require.DirExists(t, unowned, "a young directory without owner file may be in creation")
		require.DirExists(t, other, "not a cluster directory")
	})

	t.Run("KillsServerOfDeadOwner", func(t *testing.T) {
		t.Parallel()
		parent := sharedParent(t)
		orphan := startCluster(t, Config{Dir: parent})
		require.NoError(t, os.WriteFile(filepath.Join(orphan.Dir(), ownerFileName),
			[]byte(strconv.Itoa(deadPID(t))), 0o644))

		startCluster(t, Config{Dir: parent})

		require.NoDirExists(t, orphan.Dir())
		select {
		case <-orphan.exited:
		case <-time.After(5 * time.Second):
			t.Fatal("the orphaned server is still running")
		}
	})

	t.Run("CleansUpAfterCrashedProcess", func(t *testing.T) {
		t.Parallel()
		parent := sharedParent(t)
		helper := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
		helper.Env = append(os.Environ(), crashParentEnv+"="+parent)
		out, err := helper.CombinedOutput()
		require.Error(t, err, "the helper kills itself: %s", out)

		leftovers, err := filepath.Glob(filepath.Join(parent, dirPrefix+"*"))
		require.NoError(t, err)
		require.Len(t, leftovers, 1, "helper output: %s", out)
		pid, err := readPID(filepath.Join(leftovers[0], dataDirName, "postmaster.pid"))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return !processAlive(pid) }, 5*time.Second, 10*time.Millisecond,
			"the server dies with its parent (parent-death signal)")

		startCluster(t, Config{Dir: parent})
		require.NoDirExists(t, leftovers[0])
	})
}

// TestCrashHelper is the process that CleansUpAfterCrashedProcess crashes:
// it starts a cluster and dies by SIGKILL without stopping it.
func TestCrashHelper(t *testing.T) {
	parent := os.Getenv(crashParentEnv)
	if parent == "" {
		t.Skip("helper process for TestSweep")
	}
	_, err := Start(t.Context(), Config{Dir: parent})
	require.NoError(t, err)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
