package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"

	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/devstack"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/httpserve"
	"github.com/threadbox/threadbox/workflows"
)

// devOptions are dev's flags.
type devOptions struct {
	stateDir     string
	emulatorAddr string
	uiPort       int
	temporalCLI  string
}

func newDevCommand() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system on this machine (emulator, Temporal dev server, API, worker)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.stateDir, "state-dir", ".threadbox", "where dev keeps the emulator's and Temporal's state")
	cmd.Flags().StringVar(&o.emulatorAddr, "emulator-addr", "127.0.0.1:3986", "emulator listen address (when DAYTONA_API_URL is unset)")
	cmd.Flags().IntVar(&o.uiPort, "temporal-ui-port", 8233, "Temporal web UI port")
	cmd.Flags().StringVar(&o.temporalCLI, "temporal-cli", "", "path of the Temporal CLI (default: .bin/temporal, then PATH)")
	return cmd
}

// runDev starts the emulator (unless DAYTONA_API_URL points elsewhere), the
// database and the Temporal dev server, then the worker and the API, prints
// where everything is with two fresh keys, and runs until ctx is done.
func runDev(ctx context.Context, o devOptions, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg, err := config.FromEnvironment()
	if err != nil {
		return err
	}
	log := newLogger(cfg)
	g, ctx := errgroup.WithContext(ctx)

	if cfg.DaytonaAPIURL == "" {
		closeEmu, err := startEmulator(ctx, g, o, &cfg, log)
		if err != nil {
			return err
		}
		defer closeEmu()
	}
	if err := devstack.EnsureDatabase(ctx, cfg.DatabaseURL, log); err != nil {
		return err
	}
	temporal, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
		CLI:              o.temporalCLI,
		Address:          cfg.TemporalAddress,
		UIPort:           o.uiPort,
		DBFile:           filepath.Join(o.stateDir, "temporal.db"),
		SearchAttributes: workflows.SearchAttributeNames,
		Namespace:        cfg.TemporalNamespace,
	}, log)
	if err != nil {
		return err
	}
	defer temporal.Stop()

	sys, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer sys.Close()
	g.Go(func() error { return sys.runWorker(ctx) })
	g.Go(func() error { return sys.serveAPI(ctx) })
	if err := printDevBanner(ctx, out, sys, temporal.UIURL); err != nil {
		return err
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// startEmulator serves the Daytona emulator on o.emulatorAddr, keeping its
// state under the state directory, and points cfg at it. The EMULATOR_*
// settings (faults, limits) apply.
func startEmulator(ctx context.Context, g *errgroup.Group, o devOptions, cfg *config.Config, log *slog.Logger) (func(), error) {
	opts, err := emulator.OptionsFromEnv(os.Getenv) // EMULATOR_* faults and limits
	if err != nil {
		return nil, err
	}
	// A fresh key per run: the emulator refuses every other one.
	cfg.DaytonaAPIKey = "emu_" + rand.Text()
	opts.StateDir, opts.APIKey = filepath.Join(o.stateDir, "emulator"), cfg.DaytonaAPIKey
	opts.PublicURL, opts.Logger = "http://"+o.emulatorAddr, log.With("component", "emulator")
	emu, err := emulator.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.emulatorAddr)
	if err != nil {
		_ = emu.Close()
		return nil, fmt.Errorf("emulator address %s: %w", o.emulatorAddr, err)
	}
	srv := &http.Server{Handler: emu.Handler(), ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error { return httpserve.Until(ctx, srv, ln, 10*time.Second) })
	cfg.DaytonaAPIURL = "http://" + o.emulatorAddr + "/api"
	return func() { _ = emu.Close() }, nil
}

// printDevBanner creates a user key and an admin key and prints them with
// every URL a newcomer needs.
func printDevBanner(ctx context.Context, out io.Writer, sys *system, uiURL string) error {
	// The keys need the schema, which serve and worker apply in the
	// background: wait for it (a fresh database has no api_keys table yet).
	if err := sys.migrate(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	keys := auth.NewStore(db.New(sys.pool))
	userKey, _, err := keys.Create(ctx, "dev-user", false)
	if err != nil {
		return err
	}
	adminKey, _, err := keys.Create(ctx, "dev-admin", true)
	if err != nil {
		return err
	}
	cfg := sys.cfg
	fmt.Fprintf(out, `
threadbox dev is running (Ctrl-C stops it)
  API          http://%[1]s          (GET /healthz, /readyz, /metrics)
  WebDAV       http://%[1]s/dav/
  Temporal UI  %[2]s
  Temporal     %[3]s (namespace %[4]s)
  Daytona API  %[5]s
  user key     %[6]s   (user dev-user)
  admin key    %[7]s   (user dev-admin)

  try: curl -H "Authorization: Bearer %[6]s" -X POST http://%[1]s/v1/threads
`, cfg.HTTPAddr, uiURL, cfg.TemporalAddress, cfg.TemporalNamespace, cfg.DaytonaAPIURL, userKey, adminKey)
	return nil
}
