package pgcluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNoServer reports that no PostgreSQL server binaries were found.
var ErrNoServer = errors.New("pgcluster: no PostgreSQL server binaries (initdb, postgres) found; " +
	"run hack/install-postgres.sh or set Config.BinDir")

// serverBinaries are the programs a bin directory must hold.
var serverBinaries = []string{"initdb", "postgres"}

// FindBinDir returns the directory holding PostgreSQL's initdb and postgres
// binaries. It tries, in order: the directory `pg_config --bindir` reports,
// the newest /usr/lib/postgresql/<major>/bin and /usr/pgsql-<major>/bin, and
// the directory of a postgres found on PATH. It returns ErrNoServer when none
// holds both binaries.
func FindBinDir() (string, error) {
	candidates := []string{pgConfigBinDir()}
	candidates = append(candidates, versionedBinDirs("/usr/lib/postgresql/*/bin")...)
	candidates = append(candidates, versionedBinDirs("/usr/pgsql-*/bin")...)
	if path, err := exec.LookPath("postgres"); err == nil {
		candidates = append(candidates, filepath.Dir(path))
	}
	for _, dir := range candidates {
		if dir != "" && checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	return "", ErrNoServer
}

// checkBinDir reports whether dir holds executable server binaries.
func checkBinDir(dir string) error {
	for _, name := range serverBinaries {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("pgcluster: bin dir %s: %w", dir, err)
		}
		if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("pgcluster: bin dir %s: %s is not executable", dir, name)
		}
	}
	return nil
}

// pgConfigBinDir returns what `pg_config --bindir` prints, or "" when
// pg_config is missing or fails. (pg_config can come from a client-only
// package, so the caller still checks for the server binaries.)
func pgConfigBinDir() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// versionedBinDirs expands pattern, whose single * is a major version, and
// returns the matches newest version first.
func versionedBinDirs(pattern string) []string {
	dirs, _ := filepath.Glob(pattern)
	prefix, _, _ := strings.Cut(pattern, "*")
	version := func(dir string) float64 {
		rest := strings.TrimPrefix(dir, prefix)
		major, _, _ := strings.Cut(rest, "/")
		v, _ := strconv.ParseFloat(major, 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return cmp.Compare(version(b), version(a))
	})
	return dirs
}
