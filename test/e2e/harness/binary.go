// Package harness runs the tasker binary as real operating-system processes
// for whole-system tests and the benchmark: it builds the binary, runs its
// one-shot commands (migrate, template apply), starts orchestrators and
// workers with their output captured to log files, waits until each one is
// ready, and stops or kills them.
//
// Every process is started with a parent-death signal, so it dies with the
// process that started it even when that one is killed.
package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// BinaryEnv names the environment variable that, when set, points at a
// prebuilt tasker binary to use instead of building one.
const BinaryEnv = "TASKER_BIN"

// mainPackage is the import path of the tasker command.
const mainPackage = "github.com/taskerops/tasker/cmd/tasker"

// commandTimeout bounds each one-shot command (build, migrate, apply).
const commandTimeout = 5 * time.Minute

// Build returns the path of a tasker binary: the one $TASKER_BIN names, or
// else one freshly built into dir (static, trimmed paths). Call it once per
// process and share the path: the build takes seconds even when cached.
func Build(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv(BinaryEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil { //nolint:gosec // the caller names its own binary on purpose
			return "", fmt.Errorf("$%s: %w", BinaryEnv, err)
		}
		return bin, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tasker")
	build := tool{dir: root, env: []string{"CGO_ENABLED=0"}}
	if err := build.run(ctx, "go", "build", "-trimpath", "-o", bin, mainPackage); err != nil {
		return "", fmt.Errorf("building tasker: %w", err)
	}
	return bin, nil
}

// ModuleRoot returns the directory of the go.mod that encloses the current
// directory (tests run in their package's directory, `go run` in the
// caller's).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the current directory: run from inside the tasker module")
		}
		dir = parent
	}
}

// SamplesDir returns the directory of the five sample TaskTemplates
// (config/samples).
func SamplesDir() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "config", "samples"), nil
}

// Migrate runs `tasker migrate` against the database.
func Migrate(ctx context.Context, bin, databaseURL string) error {
	return tool{}.run(ctx, bin, "migrate", "--database-url", databaseURL)
}

// ApplyTemplates runs `tasker template apply` on the files or directories.
func ApplyTemplates(ctx context.Context, bin, databaseURL string, paths ...string) error {
	args := []string{"template", "apply", "--database-url", databaseURL}
	for _, p := range paths {
		args = append(args, "-f", p)
	}
	return tool{}.run(ctx, bin, args...)
}

// ApplySamples registers the five sample TaskTemplates of config/samples.
func ApplySamples(ctx context.Context, bin, databaseURL string) error {
	dir, err := SamplesDir()
	if err != nil {
		return err
	}
	return ApplyTemplates(ctx, bin, databaseURL, dir)
}

// tool describes how to run a one-shot command.
type tool struct {
	// dir is the working directory; empty means the current one.
	dir string
	// env is added to this process's environment.
	env []string
}

// run runs the command to completion within commandTimeout. A failure
// carries the command line and the end of the combined output.
func (t tool) run(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = t.dir
	if len(t.env) > 0 {
		cmd.Env = append(os.Environ(), t.env...)
	}
	cmd.SysProcAttr = childAttributes()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, lastLines(string(out), tailLines))
	}
	return nil
}
