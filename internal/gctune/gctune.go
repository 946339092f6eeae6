// Package gctune holds the garbage collector setting of tasker's
// long-running roles, so that the tasker command and the profiler that
// runs the same code in one process apply the same one.
package gctune

import (
	"os"
	"runtime/debug"
)

// ServerPercent is the garbage collector's target (GOGC) of the
// long-running roles, the orchestrator and the worker, when the
// environment does not set GOGC.
//
// Their live heap is a few MiB, so at Go's default of 100 the collector
// ran after every few MiB allocated: under load (about 20 KiB allocated
// per step) that was many collections a second, 15–20 % of the
// processes' CPU. At 200 they collect half as often, for about 6 MiB more
// peak RSS (make bench: the worker's peak went from 47 to 53 MiB, its CPU
// per step down by a fifth). GOMEMLIMIT, when set, still caps the heap.
const ServerPercent = 200

// Apply sets the collector's target to ServerPercent unless GOGC is set
// (the runtime has then applied it already), and returns the percent in
// effect.
func Apply() int {
	if os.Getenv("GOGC") != "" {
		percent := debug.SetGCPercent(-1)
		debug.SetGCPercent(percent)
		return percent
	}
	debug.SetGCPercent(ServerPercent)
	return ServerPercent
}
