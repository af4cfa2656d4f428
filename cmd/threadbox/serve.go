package main

import (
	"github.com/spf13/cobra"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/config"
)

func newServeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the API server (REST, WebDAV, tus uploads, metrics)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := config.FromEnvironment()
			if err != nil {
				return err
			}
			log := newLogger(cfg)
			pool, err := openDatabase(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer pool.Close()
			reg, err := newRegistry()
			if err != nil {
				return err
			}
			tc, err := dialTemporal(ctx, cfg, log, reg)
			if err != nil {
				return err
			}
			defer tc.Close()
			gw, err := newGateway(cfg, log, reg)
			if err != nil {
				return err
			}
			srv, err := api.New(api.Deps{Config: cfg, Pool: pool, Temporal: tc, Daytona: gw, Logger: log, Registry: reg})
			if err != nil {
				return err
			}
			defer srv.Close()
			log.InfoContext(ctx, "api listening", "addr", cfg.HTTPAddr)
			return srv.ListenAndServe(ctx, cfg.HTTPAddr)
		},
	}
}
