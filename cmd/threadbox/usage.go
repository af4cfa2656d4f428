package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/usage"
)

func newUsageCommand() *cobra.Command {
	var from, to, user string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Print the seconds sandboxes ran in a period, per user and thread, and how many ran past the policy (from the lifecycle ledger)",
		Long: "usage reads the lifecycle ledger in PostgreSQL (DATABASE_URL) and prints, for the period [--from, --to),\n" +
			"the seconds agent and files sandboxes ran per user and per thread, and the late seconds: how long sandboxes\n" +
			"ran after the stop deadline their idle stop carried out. GET /v1/admin/usage answers the same report.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			now := time.Now()
			if to == "" {
				to = now.UTC().Format(time.RFC3339)
			}
			f, t, err := usage.ParsePeriod(from, to)
			if err != nil {
				return err
			}
			pool, err := environmentDatabase(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			rep, err := usage.Read(ctx, db.New(pool), f, t, now, user)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return printUsage(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "start of the period: an RFC 3339 time or a date YYYY-MM-DD (required)")
	cmd.Flags().StringVar(&to, "to", "", "end of the period, excluded (default: now)")
	cmd.Flags().StringVar(&user, "user", "", "only this user's sandboxes")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (as GET /v1/admin/usage answers it)")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

// printUsage writes the report as tables: per user, per thread, totals.
func printUsage(w io.Writer, rep usage.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "sandbox usage from %s to %s (seconds)\n\n", rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339))
	fmt.Fprintln(tw, "USER\tAGENT RUNNING\tAGENT LATE\tFILES RUNNING\tFILES LATE\t")
	for _, u := range rep.Users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", u.UserID, secs(u.Agent.Running), secs(u.Agent.Late), secs(u.Files.Running), secs(u.Files.Late))
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t%s\t%s\t\n", secs(rep.Total.Agent.Running), secs(rep.Total.Agent.Late), secs(rep.Total.Files.Running), secs(rep.Total.Files.Late))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "USER\tTHREAD\tRUNNING\tLATE\t")
	for _, th := range rep.Threads {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", th.UserID, th.ThreadID, secs(th.Running), secs(th.Late))
	}
	return tw.Flush()
}

func secs(s float64) string { return fmt.Sprintf("%.3f", s) }
