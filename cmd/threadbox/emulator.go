package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/emulator"
)

func newEmulatorCommand() *cobra.Command {
	var addr, stateDir, apiKey string
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run the Daytona-compatible emulator alone",
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := emulator.OptionsFromEnv(os.Getenv)
			if err != nil {
				return err
			}
			cfg, err := config.FromEnvironment()
			if err != nil {
				return err
			}
			opts.StateDir, opts.APIKey = stateDir, apiKey
			opts.Logger = newLogger(cfg).With("component", "emulator")
			return emulator.Run(cmd.Context(), addr, opts)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:3986", "listen address")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "keep state in this directory (default: in memory)")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "require this bearer token (default: accept any)")
	return cmd
}
