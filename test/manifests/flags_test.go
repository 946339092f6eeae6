package manifests

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/taskerops/tasker/test/e2e/harness"
)

// sharedBinary is the tasker binary, from $TASKER_BIN or built once.
type sharedBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// taskerBinary is the package's tasker binary; TestMain removes a built one.
var taskerBinary sharedBinary

func (b *sharedBinary) get(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "tasker-manifests-"); b.err == nil {
			b.path, b.err = harness.Build(context.WithoutCancel(t.Context()), b.dir)
		}
	})
	require.NoError(t, b.err, "building tasker")
	return b.path
}

// cleanup removes the directory of a built binary.
func (b *sharedBinary) cleanup() error {
	if b.dir == "" {
		return nil
	}
	return os.RemoveAll(b.dir)
}

// helpText returns `tasker <args> --help`.
func helpText(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), taskerBinary.get(t), append(args, "--help")...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// flagPattern finds the long flags of a help text or a command line.
var flagPattern = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)

// flagsOf returns the long flags a help text lists.
func flagsOf(help string) map[string]bool {
	flags := map[string]bool{}
	for _, m := range flagPattern.FindAllStringSubmatch(help, -1) {
		flags[m[1]] = true
	}
	return flags
}

// checkFlags checks that every container running tasker passes only flags
// its subcommand has, and sets only TASKER_ variables that subcommand reads.
func checkFlags(t *testing.T, objs objects) {
	t.Helper()
	for _, d := range typed[appsv1.Deployment](t, objs, "Deployment") {
		for _, c := range d.Spec.Template.Spec.Containers {
			require.NotEmpty(t, c.Args, "Deployment %s: container %s names no tasker subcommand", d.Name, c.Name)
			sub := c.Args[0]
			help := helpText(t, sub)
			flags := flagsOf(help)
			for _, arg := range c.Args[1:] {
				m := flagPattern.FindStringSubmatch(arg)
				require.True(t, m != nil && strings.HasPrefix(arg, "--"), "Deployment %s: argument %q is not a long flag", d.Name, arg)
				require.True(t, flags[m[1]], "Deployment %s: `tasker %s` has no flag --%s", d.Name, sub, m[1])
			}
			for _, env := range c.Env {
				if strings.HasPrefix(env.Name, "TASKER_") {
					require.Contains(t, help, "env "+env.Name, "Deployment %s: `tasker %s` reads no %s", d.Name, sub, env.Name)
				}
			}
		}
	}
}
