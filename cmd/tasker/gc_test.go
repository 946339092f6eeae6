package main

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "")
	if got := tuneGC(); got != serverGCPercent {
		t.Errorf("GOGC unset: tuneGC() = %d, want %d", got, serverGCPercent)
	}
	if got := debug.SetGCPercent(100); got != serverGCPercent {
		t.Errorf("GOGC unset: the collector's percent is %d, want %d", got, serverGCPercent)
	}

	// With GOGC set, the runtime has applied it at start; tuneGC leaves
	// whatever is in effect alone.
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	if got := tuneGC(); got != 150 {
		t.Errorf("GOGC=150: tuneGC() = %d, want 150", got)
	}
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GOGC=150: the collector's percent is %d, want 150", got)
	}
}
