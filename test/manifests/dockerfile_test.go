package manifests

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"
	appsv1 "k8s.io/api/apps/v1"
)

// dockerStage is one FROM of the Dockerfile and what follows it.
type dockerStage struct {
	// from is the image, name the stage's AS name.
	from, name string
	// instructions are the stage's instructions, continuation lines joined.
	instructions []dockerInstruction
}

// dockerInstruction is one instruction: its keyword (upper case) and the
// rest of the line.
type dockerInstruction struct {
	keyword, args string
}

// all returns the arguments of every instruction with the keyword.
func (s dockerStage) all(keyword string) []string {
	var out []string
	for _, in := range s.instructions {
		if in.keyword == keyword {
			out = append(out, in.args)
		}
	}
	return out
}

// last returns the arguments of the stage's last instruction with the keyword.
func (s dockerStage) last(keyword string) string {
	all := s.all(keyword)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// fromPattern splits FROM [--platform=...] IMAGE [AS NAME].
var fromPattern = regexp.MustCompile(`^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$`)

// readDockerfile parses the repository's Dockerfile into its stages.
func readDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	f, err := os.Open(repoPath(t, "Dockerfile"))
	require.NoError(t, err)
	defer f.Close()
	var stages []dockerStage
	var line string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		text := strings.TrimSpace(scanner.Text())
		if line == "" && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			line += cont + " "
			continue
		}
		line += text
		keyword, args, _ := strings.Cut(line, " ")
		keyword, args, line = strings.ToUpper(keyword), strings.TrimSpace(args), ""
		if keyword == "FROM" {
			m := fromPattern.FindStringSubmatch(args)
			require.NotNil(t, m, "FROM %s", args)
			stages = append(stages, dockerStage{from: m[1], name: m[2]})
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, dockerInstruction{keyword, args})
		}
	}
	require.NoError(t, scanner.Err())
	return stages
}

// TestDockerfile checks the image's recipe, which cannot be built here (no
// container engine): the builder builds with `make build`, so with exactly
// the Makefile's flags, on the Go version go.mod asks for; the final stage
// is a minimal base running the binary as a numeric non-root user, the one
// the chart and config/manager run their pods as.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	require.Len(t, stages, 2, "a builder stage and the final stage")
	builder, final := stages[0], stages[1]

	t.Run("builder_uses_the_go_version_of_go.mod", func(t *testing.T) {
		data, err := os.ReadFile(repoPath(t, "go.mod"))
		require.NoError(t, err)
		mod, err := modfile.ParseLax("go.mod", data, nil)
		require.NoError(t, err)
		parts := strings.Split(mod.Go.Version, ".")
		require.GreaterOrEqual(t, len(parts), 2)
		require.Regexp(t, `^golang:`+regexp.QuoteMeta(parts[0]+"."+parts[1])+`(\.\d+)?-`, builder.from)
	})

	t.Run("builder_builds_with_make_build", func(t *testing.T) {
		var runs []string
		for _, run := range builder.all("RUN") {
			require.NotRegexp(t, `\bgo build\b`, run, "build with `make build`, so that the Makefile's flags apply")
			if strings.Contains(run, "make build VERSION=$VERSION") {
				runs = append(runs, run)
			}
		}
		require.Len(t, runs, 1, "one RUN ... make build VERSION=$VERSION")
		require.Contains(t, builder.all("ARG"), "VERSION=dev")

		// What `make build` runs: the flags the Makefile defines, output in bin/.
		makeBuild := exec.CommandContext(t.Context(), "make", "-n", "--no-print-directory", "build", "VERSION=docker-sync-check")
		makeBuild.Dir = repoRoot(t)
		out, err := makeBuild.Output()
		require.NoError(t, err, stderrOf(err))
		command := strings.TrimSpace(string(out))
		require.Contains(t, command, "CGO_ENABLED=0 go build -trimpath")
		require.Contains(t, command, "-X github.com/taskerops/tasker/internal/version.Version=docker-sync-check")
		require.Contains(t, command, "-o "+filepath.Join(repoRoot(t), "bin", "tasker")+" ./cmd/tasker")

		// The final stage copies what make build wrote: $WORKDIR/bin/tasker.
		binary := path.Join(builder.last("WORKDIR"), "bin", "tasker")
		require.Contains(t, final.all("COPY"), "--from=builder "+binary+" /usr/local/bin/tasker")
		require.Equal(t, "builder", builder.name)
	})

	t.Run("final_stage_is_minimal_and_non_root", func(t *testing.T) {
		require.Regexp(t, `^gcr\.io/distroless/static-debian\d+:nonroot$`, final.from)
		uid := numericUser(t, final.last("USER"))
		require.NotZero(t, uid, "the user must not be root")
		require.JSONEq(t, `["/usr/local/bin/tasker"]`, final.last("ENTRYPOINT"), "every role runs the one binary")

		// The pods run as that user.
		chart := renderChart(t, helm(t), "", "tasker", "tasker-system")
		kustomized := objects(decodeObjects(t, kustomize(t).mustRun(t, "build", "config/default")))
		for _, d := range append(typed[appsv1.Deployment](t, chart, "Deployment"), typed[appsv1.Deployment](t, kustomized, "Deployment")...) {
			sc := d.Spec.Template.Spec.SecurityContext
			require.NotNil(t, sc)
			require.Equal(t, uid, *sc.RunAsUser, "Deployment %s runs as the image's user", d.Name)
			require.True(t, *sc.RunAsNonRoot)
		}
	})
}

// numericUser parses USER uid[:gid], which must be numeric so that the
// kubelet can check runAsNonRoot, and returns the uid.
func numericUser(t *testing.T, user string) int64 {
	t.Helper()
	m := regexp.MustCompile(`^(\d+)(?::(\d+))?$`).FindStringSubmatch(user)
	require.NotNil(t, m, "USER %q must be numeric (uid:gid)", user)
	uid, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	if m[2] != "" {
		require.NotEqual(t, "0", m[2], "the group must not be root")
	}
	return uid
}

// TestDockerignoreKeepsTheBuildInputs checks that .dockerignore leaves in
// the build context every file `make build` needs: go.mod, go.sum, the
// Makefile and each Go file and embedded file of the packages the tasker
// command is built from.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	patterns := dockerignorePatterns(t)
	inputs := append([]string{"go.mod", "go.sum", "Makefile"}, buildInputs(t)...)
	require.Greater(t, len(inputs), 10)
	for _, input := range inputs {
		for _, pattern := range patterns {
			require.False(t, dockerignoreMatches(t, pattern, input), ".dockerignore pattern %q excludes %s, which the build needs", pattern, input)
		}
	}
	// And it keeps out what would bloat the context or leak local state.
	for _, excluded := range []string{".git/config", "bin/tasker", "charts/tasker-operator/Chart.yaml"} {
		require.True(t, slices.ContainsFunc(patterns, func(p string) bool { return dockerignoreMatches(t, p, excluded) }), "%s should be excluded", excluded)
	}
}

// dockerignorePatterns reads .dockerignore. It supports the plain patterns
// the file uses; exceptions (!) and ** would need Docker's full rules.
func dockerignorePatterns(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, ".dockerignore"))
	require.NoError(t, err)
	var patterns []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		require.False(t, strings.HasPrefix(line, "!") || strings.Contains(line, "**"), "pattern %q: this test does not understand ! or **", line)
		patterns = append(patterns, path.Clean(strings.TrimPrefix(line, "/")))
	}
	return patterns
}

// dockerignoreMatches reports whether the pattern excludes the file: it
// matches the file's path or one of its parent directories.
func dockerignoreMatches(t *testing.T, pattern, file string) bool {
	t.Helper()
	parts := strings.Split(file, "/")
	for i := range parts {
		ok, err := path.Match(pattern, strings.Join(parts[:i+1], "/"))
		require.NoError(t, err, pattern)
		if ok {
			return true
		}
	}
	return false
}

// buildInputs lists, relative to the repository, the Go files and embedded
// files of this module's packages that the tasker command is built from.
func buildInputs(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-json=Dir,GoFiles,EmbedFiles,Module", "./cmd/tasker")
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err, stderrOf(err))
	var files []string
	decoder := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var pkg struct {
			Dir        string   `json:"Dir"`
			GoFiles    []string `json:"GoFiles"`
			EmbedFiles []string `json:"EmbedFiles"`
			Module     *struct {
				Main bool `json:"Main"`
			} `json:"Module"`
		}
		err := decoder.Decode(&pkg)
		if errors.Is(err, io.EOF) {
			return files
		}
		require.NoError(t, err)
		if pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		rel, err := filepath.Rel(root, pkg.Dir)
		require.NoError(t, err)
		for _, f := range append(pkg.GoFiles, pkg.EmbedFiles...) {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
}
