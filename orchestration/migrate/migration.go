package migrate

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// A Migration is one numbered schema change with its up and down SQL.
type Migration struct {
	// Version is the migration's number; versions start at 1 and have no gaps.
	Version int
	// Name is the descriptive part of the file name, e.g. "engine".
	Name string
	// Up is the SQL that applies the migration.
	Up string
	// Down is the SQL that reverts it.
	Down string
	// PreferExtension names a PostgreSQL extension that replaces Up when the
	// server offers it (directive "-- tasker:prefer-extension NAME" on the
	// first line of the up file). The pgmq queue layer uses it: the real pgmq
	// extension when installed, the bundled compatible SQL otherwise.
	PreferExtension string
}

// fileNamePattern matches "0001_name.up.sql" and "0001_name.down.sql".
var fileNamePattern = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$`)

// preferExtensionDirective is the first-line directive of an up file whose
// body is a fallback for an extension.
const preferExtensionDirective = "-- tasker:prefer-extension "

// load reads every migration file in dir of fsys and checks that the set is
// complete: versions 1..N without gaps or duplicates, each with an up and a
// down file, and no stray files.
func load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	byVersion := map[int]*Migration{}
	for _, entry := range entries {
		if err := addFile(fsys, dir, entry.Name(), byVersion); err != nil {
			return nil, err
		}
	}
	return ordered(byVersion)
}

// addFile parses one migration file into byVersion.
func addFile(fsys fs.FS, dir, name string, byVersion map[int]*Migration) error {
	match := fileNamePattern.FindStringSubmatch(name)
	if match == nil {
		return fmt.Errorf("migration file %q: name must look like 0001_name.up.sql or 0001_name.down.sql", name)
	}
	version, _ := strconv.Atoi(match[1])
	body, err := fs.ReadFile(fsys, path.Join(dir, name))
	if err != nil {
		return fmt.Errorf("reading migration %q: %w", name, err)
	}
	m := byVersion[version]
	if m == nil {
		m = &Migration{Version: version, Name: match[2]}
		byVersion[version] = m
	}
	if m.Name != match[2] {
		return fmt.Errorf("migration %04d has two names: %q and %q", version, m.Name, match[2])
	}
	switch match[3] {
	case "up":
		if m.Up != "" {
			return fmt.Errorf("migration %04d has two up files", version)
		}
		m.Up = string(body)
		m.PreferExtension = extensionDirective(m.Up)
	case "down":
		if m.Down != "" {
			return fmt.Errorf("migration %04d has two down files", version)
		}
		m.Down = string(body)
	}
	return nil
}

// ordered checks completeness and returns the migrations by version.
func ordered(byVersion map[int]*Migration) ([]Migration, error) {
	if len(byVersion) == 0 {
		return nil, errors.New("no migrations found")
	}
	versions := make([]int, 0, len(byVersion))
	for v := range byVersion {
		versions = append(versions, v)
	}
	sort.Ints(versions)
	out := make([]Migration, 0, len(versions))
	for i, v := range versions {
		if v != i+1 {
			return nil, fmt.Errorf("migration versions must run 1..N without gaps: expected %04d, found %04d", i+1, v)
		}
		m := byVersion[v]
		if strings.TrimSpace(m.Up) == "" || strings.TrimSpace(m.Down) == "" {
			return nil, fmt.Errorf("migration %04d_%s needs a non-empty up and down file", v, m.Name)
		}
		out = append(out, *m)
	}
	return out, nil
}

// extensionDirective returns the extension named by the up file's first line
// directive, or "".
func extensionDirective(up string) string {
	line, _, _ := strings.Cut(up, "\n")
	if name, ok := strings.CutPrefix(strings.TrimSpace(line), preferExtensionDirective); ok {
		return strings.TrimSpace(name)
	}
	return ""
}

// fingerprint hashes every migration's version, name and SQL, so that a
// change to any file changes it.
func fingerprint(migrations []Migration) string {
	h := sha256.New()
	w := bufio.NewWriter(h)
	for _, m := range migrations {
		fmt.Fprintf(w, "%d\x00%s\x00%s\x00%s\x00", m.Version, m.Name, m.Up, m.Down)
	}
	_ = w.Flush()
	return hex.EncodeToString(h.Sum(nil))
}
