package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
)

func newAPIKeyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Manage API keys"}
	var user string
	var admin bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Print a new API key for a user (stored hashed; shown once)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := auth.ValidUserID(user); err != nil {
				return fmt.Errorf("--user: %w", err)
			}
			pool, err := environmentDatabase(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			key, _, err := auth.NewStore(db.New(pool)).Create(ctx, user, admin)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), key)
			return nil
		},
	}
	create.Flags().StringVar(&user, "user", "", "user id the key acts for (required)")
	create.Flags().BoolVar(&admin, "admin", false, "allow the admin routes")
	_ = create.MarkFlagRequired("user")
	cmd.AddCommand(create)
	return cmd
}
