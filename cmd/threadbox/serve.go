package main

import "github.com/spf13/cobra"

func newServeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the API server (REST, WebDAV, tus uploads, metrics)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCommand(cmd.Context(), (*system).serveAPI)
		},
	}
}
