package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/devstack"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/worker"
	"github.com/threadbox/threadbox/workflows"
)

func newDevCommand() *cobra.Command {
	var (
		stateDir     string
		emulatorAddr string
		uiPort       int
		temporalCLI  string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system on this machine (emulator, Temporal dev server, API, worker)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			cfg, err := config.FromEnvironment()
			if err != nil {
				return err
			}
			log := newLogger(cfg)
			g, ctx := errgroup.WithContext(ctx)

			if cfg.DaytonaAPIURL == "" {
				unsafeHostExec, err := emulator.UnsafeHostExecFromEnv(os.Getenv)
				if err != nil {
					return err
				}
				// A fresh key per run: the emulator refuses every other one.
				cfg.DaytonaAPIKey = "emu_" + rand.Text()
				emu, err := emulator.New(ctx, emulator.Options{
					StateDir:       filepath.Join(stateDir, "emulator"),
					APIKey:         cfg.DaytonaAPIKey,
					PublicURL:      "http://" + emulatorAddr,
					Logger:         log.With("component", "emulator"),
					UnsafeHostExec: unsafeHostExec,
				})
				if err != nil {
					return err
				}
				defer emu.Close()
				ln, err := net.Listen("tcp", emulatorAddr)
				if err != nil {
					return fmt.Errorf("emulator address %s: %w", emulatorAddr, err)
				}
				srv := &http.Server{Handler: emu.Handler(), ReadHeaderTimeout: 10 * time.Second}
				g.Go(func() error { return serveUntil(ctx, srv, ln) })
				cfg.DaytonaAPIURL = "http://" + emulatorAddr + "/api"
			}

			if err := devstack.EnsureDatabase(ctx, cfg.DatabaseURL, log); err != nil {
				return err
			}
			temporal, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
				CLI:              temporalCLI,
				Address:          cfg.TemporalAddress,
				UIPort:           uiPort,
				DBFile:           filepath.Join(stateDir, "temporal.db"),
				SearchAttributes: workflows.SearchAttributeNames,
				Namespace:        cfg.TemporalNamespace,
			}, log)
			if err != nil {
				return err
			}
			defer temporal.Stop()

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
			g.Go(func() error { return worker.Run(ctx, w, log) })

			srv, err := api.New(api.Deps{Config: cfg, Pool: pool, Temporal: tc, Daytona: gw, Logger: log})
			if err != nil {
				return err
			}
			defer srv.Close()
			g.Go(func() error { return srv.ListenAndServe(ctx, cfg.HTTPAddr) })

			keys := auth.NewStore(db.New(pool))
			userKey, _, err := keys.Create(ctx, "dev-user", false)
			if err != nil {
				return err
			}
			adminKey, _, err := keys.Create(ctx, "dev-admin", true)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), `
threadbox dev is running (Ctrl-C stops it)
  API          http://%[1]s          (GET /healthz, /readyz, /metrics)
  WebDAV       http://%[1]s/dav/
  Temporal UI  %[2]s
  Temporal     %[3]s (namespace %[4]s)
  Daytona API  %[5]s
  user key     %[6]s   (user dev-user)
  admin key    %[7]s   (user dev-admin)

  try: curl -H "Authorization: Bearer %[6]s" -X POST http://%[1]s/v1/threads
`, cfg.HTTPAddr, temporal.UIURL, cfg.TemporalAddress, cfg.TemporalNamespace, cfg.DaytonaAPIURL, userKey, adminKey)

			err = g.Wait()
			if errors.Is(err, context.Canceled) || errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", ".threadbox", "where dev keeps the emulator's and Temporal's state")
	cmd.Flags().StringVar(&emulatorAddr, "emulator-addr", "127.0.0.1:3986", "emulator listen address (when DAYTONA_API_URL is unset)")
	cmd.Flags().IntVar(&uiPort, "temporal-ui-port", 8233, "Temporal web UI port")
	cmd.Flags().StringVar(&temporalCLI, "temporal-cli", "", "path of the Temporal CLI (default: .bin/temporal, then PATH)")

	return cmd
}

// serveUntil serves srv on ln until ctx is done.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}
