package main

import "github.com/spf13/cobra"

// newTaskCommand is being written.
func newTaskCommand() *cobra.Command {
	return &cobra.Command{Use: "task", Short: "(not yet available)", Hidden: true}
}
