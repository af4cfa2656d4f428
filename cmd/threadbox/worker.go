package main

import (
	"github.com/spf13/cobra"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/worker"
	"github.com/threadbox/threadbox/workflows"
)

func newWorkerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (all workflows and activities)",
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
			tc, err := dialTemporal(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer tc.Close()
			gw, err := newGateway(cfg, log)
			if err != nil {
				return err
			}
			w := worker.New(tc, worker.Options{TaskQueue: cfg.TemporalTaskQueue}, activities.New(cfg, pool, gw, log))
			if err := workflows.EnsureReconcileSchedule(ctx, tc, cfg.TemporalTaskQueue, cfg.ReconcileInterval.Duration()); err != nil {
				return err
			}
			return worker.Run(ctx, w, log)
		},
	}
}
