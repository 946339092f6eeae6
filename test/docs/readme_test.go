// Package docs runs what README.md shows: every command of its ```sh
// blocks, in order, against a running `tasker dev --keep` (PostgreSQL, a
// local Kubernetes API server, the operator, the orchestrator and workers),
// with the variables that `tasker dev --keep` tells the reader to export.
// It also checks that the code and YAML the README quotes are the files
// they claim to be.
//
//	go run ./internal/pgtest/pgrun -- go test ./test/docs -count=1 -v
package docs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/taskerops/tasker/test/e2e/harness"
)

// notRunHere are the README commands this test does not run, each with
// what runs it instead. A block that starts with one must hold nothing else.
var notRunHere = map[string]string{
	"make demo": "test/e2e TestDev runs `tasker dev` exactly as `make demo` does (make demo adds only `make postgres build`)",
	"make test": "CI runs it (.ci/run), and this test runs inside it",
}

// optionalTools may be missing from a machine (they are not needed to build
// or test Tasker); a block that needs one that is missing is reported as not
// run. Every other program a block names must be there.
var optionalTools = map[string]bool{"kubectl": true, "jq": true, "curl": true}

// blockTimeout bounds one block.
const blockTimeout = 3 * time.Minute

// shellBlock is one ```sh block of a Markdown file.
type shellBlock struct {
	line   int    // of the opening fence
	script string // the block's text
	// commands are its commands: lines joined over trailing backslashes,
	// without comments and blank lines.
	commands []string
}

func readShellBlocks(t *testing.T, path string) []shellBlock {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var (
		blocks  []shellBlock
		current *shellBlock
		pending string
	)
	scanner := bufio.NewScanner(f)
	for n := 1; scanner.Scan(); n++ {
		line := scanner.Text()
		switch {
		case current == nil && strings.TrimSpace(line) == "```sh":
			current = &shellBlock{line: n}
		case current != nil && strings.TrimSpace(line) == "```":
			require.Empty(t, pending, "%s:%d: a block ends with a continued line", path, n)
			blocks = append(blocks, *current)
			current = nil
		case current != nil:
			current.script += line + "\n"
			text := strings.TrimSpace(line)
			if pending == "" && (text == "" || strings.HasPrefix(text, "#")) {
				continue
			}
			if joined, continued := strings.CutSuffix(text, "\\"); continued {
				pending += joined
				continue
			}
			current.commands = append(current.commands, pending+text)
			pending = ""
		}
	}
	require.NoError(t, scanner.Err())
	require.Nil(t, current, "%s: a ```sh block is not closed", path)
	return blocks
}

// programs names the programs a block's commands run: the first word of
// each command and of each $( ) and pipeline part.
func programs(b shellBlock) []string {
	var names []string
	seen := map[string]bool{}
	for _, command := range b.commands {
		for _, part := range regexp.MustCompile(`\$\(|\||&&|;`).Split(command, -1) {
			fields := strings.Fields(part)
			for len(fields) > 0 && strings.Contains(fields[0], "=") { // VAR=value prefixes
				fields = fields[1:]
			}
			if len(fields) == 0 || seen[fields[0]] || strings.ContainsAny(fields[0], `"'%$`) {
				continue
			}
			seen[fields[0]] = true
			names = append(names, fields[0])
		}
	}
	return names
}

// shellBuiltins need no program.
var shellBuiltins = map[string]bool{"export": true, "kill": true, "cd": true, "set": true, "test": true, "echo": true, "cat": true}

// TestREADMECommands runs every ```sh block of README.md, in order, in the
// repository, against `tasker dev --keep`.
func TestREADMECommands(t *testing.T) {
	root, err := harness.ModuleRoot()
	require.NoError(t, err)
	blocks := readShellBlocks(t, filepath.Join(root, "README.md"))
	require.NotEmpty(t, blocks)

	var run []shellBlock
	for _, b := range blocks {
		reason, skip := notRunHere[b.commands[0]]
		if !skip {
			run = append(run, b)
			continue
		}
		require.Len(t, b.commands, 1, "README.md:%d: a block with %q holds only that command", b.line, b.commands[0])
		t.Logf("README.md:%d: %s: not run here: %s", b.line, b.commands[0], reason)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	bin, err := harness.Build(ctx, t.TempDir())
	require.NoError(t, err)
	path := toolDir(t, root, bin)
	dev, err := harness.StartDev(ctx, bin, root, 4*time.Minute)
	require.NoError(t, err)
	defer func() { require.NoError(t, dev.Stop(), "tasker dev --keep exits 0 on Ctrl-C") }()

	env := os.Environ()
	for name, value := range dev.Env {
		env = append(env, name+"="+value)
	}
	env = append(env, "PATH="+path+string(os.PathListSeparator)+os.Getenv("PATH"))

	for _, b := range run {
		name := fmt.Sprintf("README.md:%d", b.line)
		if missing := missingTools(t, b, path); len(missing) > 0 {
			t.Logf("%s: not run: %s not installed on this machine", name, strings.Join(missing, ", "))
			continue
		}
		blockCtx, cancel := context.WithTimeout(ctx, blockTimeout)
		cmd := exec.CommandContext(blockCtx, "bash", "-euo", "pipefail", "-c", b.script)
		cmd.Dir = root
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		cancel()
		require.NoError(t, err, "%s failed:\n%s\noutput:\n%s", name, b.script, out)
		t.Logf("%s ok:\n%s", name, out)
	}
}

// toolDir returns a directory to put first on PATH: tasker (bin), helm and
// kustomize (the pinned versions make test installs) under their plain
// names, as a reader who followed the README has them.
func toolDir(t *testing.T, root, bin string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Symlink(bin, filepath.Join(dir, "tasker")))
	for _, tool := range []string{"helm", "kustomize"} {
		path := os.Getenv("TASKER_" + strings.ToUpper(tool))
		if path == "" {
			matches, _ := filepath.Glob(filepath.Join(root, "bin", tool+"-v*"))
			require.NotEmpty(t, matches, "%s: set TASKER_%s or run `make %s` (make test does)", tool, strings.ToUpper(tool), tool)
			path = matches[len(matches)-1]
		}
		require.NoError(t, os.Symlink(path, filepath.Join(dir, tool)))
	}
	return dir
}

// missingTools returns the optional programs a block needs that are not
// installed; a missing program that is not optional fails the test.
func missingTools(t *testing.T, b shellBlock, path string) []string {
	t.Helper()
	var missing []string
	for _, program := range programs(b) {
		if shellBuiltins[program] || strings.Contains(program, "/") {
			continue
		}
		if _, err := lookPath(program, path); err == nil {
			continue
		}
		require.True(t, optionalTools[program], "README.md:%d needs %s, which is not installed", b.line, program)
		missing = append(missing, program)
	}
	return missing
}

// lookPath finds program in dir or on PATH.
func lookPath(program, dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, program)); err == nil {
		return filepath.Join(dir, program), nil
	}
	return exec.LookPath(program)
}

// TestREADMEQuotesTheExample checks that the handler and the TaskTemplate
// the README shows are those of examples/greeter, which the commands build
// and run.
func TestREADMEQuotesTheExample(t *testing.T) {
	t.Parallel()
	root, err := harness.ModuleRoot()
	require.NoError(t, err)
	readme := read(t, filepath.Join(root, "README.md"))

	goBlock := fencedBlock(t, readme, "go")
	require.Contains(t, indentFree(read(t, filepath.Join(root, "examples", "greeter", "main.go"))), indentFree(goBlock),
		"the README's handler is a verbatim part of examples/greeter/main.go")

	var shown, file any
	require.NoError(t, yaml.Unmarshal([]byte(fencedBlock(t, readme, "yaml")), &shown))
	require.NoError(t, yaml.Unmarshal([]byte(read(t, filepath.Join(root, "examples", "greeter", "tasktemplate.yaml"))), &file))
	require.Equal(t, file, shown, "the README's TaskTemplate is examples/greeter/tasktemplate.yaml")
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

// fencedBlock returns the only ```lang block of a Markdown text.
func fencedBlock(t *testing.T, text, lang string) string {
	t.Helper()
	blocks := regexp.MustCompile("(?ms)^```"+lang+"\n(.*?)^```$").FindAllStringSubmatch(text, -1)
	require.Len(t, blocks, 1, "README.md has one ```%s block", lang)
	return blocks[0][1]
}

// indentFree removes the leading white space of every line, so that a
// quote may sit at another indentation than its source.
func indentFree(s string) string {
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		lines[i] = strings.TrimLeft(line, " \t")
	}
	return strings.Join(lines, "\n")
}
