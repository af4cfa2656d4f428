package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/db"
)

func newMigrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := config.FromEnvironment()
			if err != nil {
				return err
			}
			pool, err := db.Open(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer pool.Close()
			n, err := db.Migrate(ctx, pool)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "applied %d migrations\n", n)
			return nil
		},
	}
}
