// Command threadbox is the single binary of threadbox: the API server, the
// Temporal worker, migrations, API keys, the usage report, the Daytona emulator, and `dev`, which
// runs the whole system on one machine.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful stop (bounded by
	// THREADBOX_SHUTDOWN_TIMEOUT); a second one ends the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "threadbox:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "threadbox",
		Short:         "Daytona sandboxes for AI-agent threads, with lifecycles kept by Temporal",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newDevCommand(),
		newServeCommand(),
		newWorkerCommand(),
		newMigrateCommand(),
		newEmulatorCommand(),
		newAPIKeyCommand(),
		newUsageCommand(),
	)
	return root
}
