package main

import (
	"os"
	"runtime/debug"
)

// serverGCPercent is the garbage collector's target (GOGC) of the
// long-running roles, the orchestrator and the worker, when the
// environment does not set GOGC.
//
// Their live heap is a few MiB, so at Go's default of 100 the collector
// ran after every few MiB allocated: under load (about 20 KiB allocated
// per step) that was many collections a second, 15–20 % of the
// processes' CPU. At 200 they collect half as often, for about 6 MiB more
// peak RSS (make bench: the worker's peak went from 47 to 53 MiB, its CPU
// per step down by a fifth). GOMEMLIMIT, when set, still caps the heap.
const serverGCPercent = 200

// tuneGC applies serverGCPercent unless GOGC is set, and returns the
// percent in effect.
func tuneGC() int {
	if os.Getenv("GOGC") != "" {
		percent := debug.SetGCPercent(-1)
		debug.SetGCPercent(percent)
		return percent
	}
	debug.SetGCPercent(serverGCPercent)
	return serverGCPercent
}
