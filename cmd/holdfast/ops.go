package main

import "github.com/spf13/cobra"

// addOperatorCommands adds the operator CLI (ps, tasks, events, logs,
// protect, scale).
func addOperatorCommands(root *cobra.Command) {}
