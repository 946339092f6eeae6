package main

import "github.com/spf13/cobra"

// newTemplateCommand is being written.
func newTemplateCommand() *cobra.Command {
	return &cobra.Command{Use: "template", Short: "(not yet available)", Hidden: true}
}
