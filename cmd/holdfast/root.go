package main

import "github.com/spf13/cobra"

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "holdfast",
		Short:         "A self-hosted, ECS-compatible service scheduler with task scale-in protection",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(upCmd(), serverCmd(), agentCmd(), envCmd(), benchCmd(), backupCmd(), restoreCmd(), migrateCmd())
	addOperatorCommands(root)
	return root
}
