package main

import (
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/metrics"
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
			acts, err := newWorkerActivities(cfg, pool, gw, log, reg)
			if err != nil {
				return err
			}
			w := worker.New(tc, worker.Options{TaskQueue: cfg.TemporalTaskQueue}, acts)
			if err := workflows.EnsureReconcileSchedule(ctx, tc, cfg.TemporalTaskQueue, cfg.ReconcileInterval.Duration()); err != nil {
				return err
			}
			g, ctx := errgroup.WithContext(ctx)
			if cfg.WorkerMetricsAddr != "" {
				g.Go(func() error { return metrics.Serve(ctx, cfg.WorkerMetricsAddr, reg, log) })
			}
			g.Go(func() error { return worker.Run(ctx, w, log) })
			return g.Wait()
		},
	}
}
