package main

import "github.com/spf13/cobra"

// newWorkerCommand is being written.
func newWorkerCommand() *cobra.Command {
	return &cobra.Command{Use: "worker", Short: "(not yet available)", Hidden: true}
}
