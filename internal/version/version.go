// Package version holds the build's version, set at link time with
// -ldflags "-X github.com/taskerops/tasker/internal/version.Version=...".
package version

// Version is the tasker version; "dev" for builds without the flag.
var Version = "dev"
