package main

import "github.com/spf13/cobra"

func newWorkerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (all workflows and activities)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCommand(cmd.Context(), (*system).runWorker)
		},
	}
}
