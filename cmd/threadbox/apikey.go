package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
)

// newAPIKeyCommand is `threadbox apikey create|list|revoke`, the same
// operations as the admin routes under /v1/admin/keys, straight on the
// database (for the first admin key, and for operators with database access).
func newAPIKeyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Manage API keys"}
	cmd.AddCommand(newAPIKeyCreateCommand(), newAPIKeyListCommand(), newAPIKeyRevokeCommand())
	return cmd
}

// withKeyStore runs fn with the key store of the configured database.
func withKeyStore(ctx context.Context, fn func(*auth.Store) error) error {
	pool, err := environmentDatabase(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	return fn(auth.NewStore(db.New(pool)))
}

func newAPIKeyCreateCommand() *cobra.Command {
	var user string
	var admin bool
	var expires time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Print a new API key for a user (stored hashed; shown once)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := auth.ValidUserID(user); err != nil {
				return fmt.Errorf("--user: %w", err)
			}
			if expires < 0 {
				return fmt.Errorf("--expires: must be positive, got %s", expires)
			}
			spec := auth.Spec{UserID: user, Admin: admin}
			if expires > 0 {
				spec.ExpiresAt = time.Now().Add(expires)
			}
			return withKeyStore(cmd.Context(), func(keys *auth.Store) error {
				key, _, err := keys.Issue(cmd.Context(), spec)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), key)
				return nil
			})
		},
	}
	create.Flags().StringVar(&user, "user", "", "user id the key acts for (required)")
	create.Flags().BoolVar(&admin, "admin", false, "allow the admin routes")
	create.Flags().DurationVar(&expires, "expires", 0, "the key stops working after this long (e.g. 720h); never when omitted")
	_ = create.MarkFlagRequired("user")
	return create
}

func newAPIKeyListCommand() *cobra.Command {
	var user string
	var all, asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys (id, user, prefix, state, expiry, last use); never the keys themselves",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user != "" {
				if err := auth.ValidUserID(user); err != nil {
					return fmt.Errorf("--user: %w", err)
				}
			}
			return withKeyStore(cmd.Context(), func(keys *auth.Store) error {
				infos, err := keys.List(cmd.Context(), user, all)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(infos)
				}
				return printKeys(cmd.OutOrStdout(), infos)
			})
		},
	}
	list.Flags().StringVar(&user, "user", "", "only this user's keys")
	list.Flags().BoolVar(&all, "all", false, "include revoked and expired keys")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON (the admin route's fields)")
	return list
}

func printKeys(w io.Writer, infos []auth.KeyInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tPREFIX\tADMIN\tSTATE\tCREATED\tEXPIRES\tLAST USED")
	stamp := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, k := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\t%s\t%s\n", k.ID, k.UserID, k.Prefix, k.Admin, k.State,
			stamp(&k.CreatedAt), stamp(k.ExpiresAt), stamp(k.LastUsedAt))
	}
	return tw.Flush()
}

func newAPIKeyRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke an API key by its id (every API replica refuses it within a second)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := uuid.Parse(args[0])
			if err != nil {
				return fmt.Errorf("key id %q: %w (see `threadbox apikey list`)", args[0], err)
			}
			return withKeyStore(cmd.Context(), func(keys *auth.Store) error {
				revoked, err := keys.Revoke(cmd.Context(), id)
				if err != nil {
					return err
				}
				if revoked {
					fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", id)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%s was already revoked\n", id)
				}
				return nil
			})
		},
	}
}
