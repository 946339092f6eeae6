package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAllocsPath(t *testing.T) {
	for _, c := range []struct{ cpu, suffix, want string }{
		{"/tmp/p/profile.cpu", "", "/tmp/p/profile.allocs"},
		{"/tmp/p/profile.cpu", "base", "/tmp/p/profile.allocs.base"},
		{"run1", "base", "run1.allocs.base"},
	} {
		if got := allocsPath(c.cpu, c.suffix); got != c.want {
			t.Errorf("allocsPath(%q, %q) = %q, want %q", c.cpu, c.suffix, got, c.want)
		}
	}
}

func TestParseFlagsSetupSQL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "skip.sql")
	if err := os.WriteFile(file, []byte("SELECT 1;"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseFlags([]string{"-setup-sql", file, "-tasks", "10"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.setupText != "SELECT 1;" || cfg.tasks != 10 || cfg.warmup != 20 {
		t.Errorf("parseFlags: setupText %q, tasks %d, warmup %d; want SELECT 1;, 10, 20", cfg.setupText, cfg.tasks, cfg.warmup)
	}
	// A file that cannot be read fails the flags, before anything starts.
	if _, err := parseFlags([]string{"-setup-sql", filepath.Join(t.TempDir(), "missing.sql")}); err == nil {
		t.Error("parseFlags with a missing -setup-sql file: no error")
	}
}
