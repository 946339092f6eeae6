package gctune

import (
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "")
	if got := Apply(); got != ServerPercent {
		t.Errorf("GOGC unset: Apply() = %d, want %d", got, ServerPercent)
	}
	if got := debug.SetGCPercent(100); got != ServerPercent {
		t.Errorf("GOGC unset: the collector's percent is %d, want %d", got, ServerPercent)
	}

	// With GOGC set, the runtime has applied it at start; Apply leaves
	// whatever is in effect alone.
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	if got := Apply(); got != 150 {
		t.Errorf("GOGC=150: Apply() = %d, want 150", got)
	}
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GOGC=150: the collector's percent is %d, want 150", got)
	}
}
