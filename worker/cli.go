package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/devserver"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/internal/tclient"
	"github.com/akosha/akosha/schedules"
	"github.com/akosha/akosha/workflows"
)

// signalContext ends on SIGINT or SIGTERM.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// Command is `akosha worker`: one shard's engine, HTTP API and Temporal pollers.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run the engine worker of one shard (HTTP API, metrics, Temporal pollers)",
		Description: "Opens the shard's hot and warm DuckDB files and its WAL (replaying what was not applied),\n" +
			"serves the HTTP API (api.addr, :8682) and /metrics (AKOSHA_PROMETHEUS_PORT, :9090), and polls\n" +
			"Temporal: engine activities on akosha-engine-<shard>, workflows on akosha-ops.\n" +
			"On SIGTERM it stops polling, lets running activities and requests finish within --grace-period,\n" +
			"checkpoints and closes the files.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "shard", Usage: "shard id (default: shard.id, AKOSHA_SHARD_ID, 0)"},
			&cli.IntFlag{Name: "shards", Usage: "number of shards: conversations go to shard jump_hash(fnv1a64(system_id), N); others' are refused with 421 (default: shard.count, AKOSHA_SHARDS, 1)"},
			&cli.DurationFlag{Name: "grace-period", Value: DefaultGracePeriod, Usage: "time given to running activities and requests on shutdown"},
			&cli.BoolFlag{Name: "no-temporal", Usage: "serve the engine and HTTP API without polling Temporal"},
		},
		Action: func(c *cli.Context) error {
			cfg, log, err := clicfg.Load(c)
			if err != nil {
				return err
			}
			if c.IsSet("shard") || c.IsSet("shards") {
				if c.IsSet("shard") {
					cfg.Shard.ID = c.Int("shard")
				}
				if c.IsSet("shards") {
					cfg.Shard.Count = c.Int("shards")
				}
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("--shard/--shards: %w", err)
				}
			}
			if err := shardIDGiven(cfg, c.IsSet("shard")); err != nil {
				return err
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			opts := Options{GracePeriod: c.Duration("grace-period"), Logger: log}
			if point := os.Getenv(FaultKillEnv); point != "" {
				if opts.ActivityFault, err = KillAt(point); err != nil {
					return err
				}
				log.Warn("fault injection armed: this worker kills itself (tests only)", "at", point)
			}
			if !c.Bool("no-temporal") {
				tc, err := tclient.Dial(ctx, cfg, log)
				if err != nil {
					return err
				}
				defer tc.Close()
				opts.Temporal = tc
			}
			return Run(ctx, cfg, opts)
		},
	}
}

// DevCommand is `akosha dev`: the single-machine default. It runs an embedded Temporal
// server (SQLite under the data dir) with its Web UI, worker shard 0 and the HTTP API.
func DevCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run everything on this machine: embedded Temporal + Web UI, worker shard 0, HTTP API",
		Description: "The single-machine default (what `make run` starts). Data goes under data_dir (default\n" +
			"~/.akosha/dev): hot/, warm/, wal/ and temporal/temporal.db, so workflows survive a restart.\n" +
			"Nothing else needs installing. Stop with Ctrl-C.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ip", Value: "127.0.0.1", Usage: "IP the Temporal frontend, UI, HTTP API and metrics listen on (an api.addr with a host wins for the API)"},
			&cli.IntFlag{Name: "temporal-port", Value: 7233, Usage: "Temporal gRPC frontend port"},
			&cli.IntFlag{Name: "ui-port", Value: 8233, Usage: "Temporal Web UI port (-1 disables the UI)"},
		},
		Action: func(c *cli.Context) error {
			cfg, log, err := clicfg.Load(c)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			return runDev(ctx, c.App.Writer, devOptions{
				ip: c.String("ip"), temporalPort: c.Int("temporal-port"), uiPort: c.Int("ui-port"),
			}, cfg, log)
		},
	}
}

type devOptions struct {
	ip                   string
	temporalPort, uiPort int
}

func runDev(ctx context.Context, out io.Writer, o devOptions, cfg *config.Config, log *slog.Logger) error {
	srv, err := devserver.Start(ctx, devserver.Options{
		DataDir:      filepath.Join(cfg.DataDir, "temporal"),
		IP:           o.ip,
		FrontendPort: o.temporalPort,
		UIPort:       o.uiPort,
		Namespace:    cfg.Temporal.Namespace,
		// The runbooks' search attributes (AkoshaScenario, AkoshaOutcome, ...).
		SearchAttributes: workflows.SearchAttributeTypes,
		Logger:           log,
	})
	if err != nil {
		return fmt.Errorf("start embedded Temporal: %w", err)
	}
	defer srv.Stop()
	cfg.Temporal.Address = srv.FrontendAddress()
	// A dev machine keeps the API and metrics on --ip (loopback by default) unless
	// AKOSHA_API_ADDR or the config file names a host.
	if host, port, err := net.SplitHostPort(cfg.API.Addr); err == nil && host == "" {
		cfg.API.Addr = net.JoinHostPort(o.ip, port)
	}
	tc, err := tclient.Dial(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer tc.Close()
	w, err := Start(ctx, cfg, Options{Temporal: tc, Logger: log})
	if err != nil {
		return err
	}
	applyDevSchedules(ctx, out, log, tc, cfg)
	fmt.Fprintf(out, `akosha dev is running (stop with Ctrl-C)
  data dir        %s
  hot / warm      %s / %s
  WAL             %s
  HTTP API        %s   (POST /v1/conversations, GET /v1/stats, /health, /ready)
  metrics         %s
  Temporal        %s  namespace %s
  Temporal UI     %s
  try:            akosha ingest --synthetic 10000 --days 30
                  akosha schedule list
                  akosha checkpoint --wait
`, cfg.DataDir, cfg.Storage.Hot.Path, cfg.Storage.Warm.Path, cfg.Storage.Hot.WALPath, clicfg.LocalURL(w.APIAddr()),
		orNone(clicfg.LocalURL(w.MetricsAddr()), "%s/metrics"), srv.FrontendAddress(), srv.Namespace(), orNone(srv.UIAddress(), "%s"))
	select {
	case <-ctx.Done():
	case err = <-w.Err():
	}
	fmt.Fprintln(out, "akosha dev: stopping")
	return errors.Join(err, w.Stop(context.Background()))
}

// devScheduleTimeout bounds applying the default schedules when `akosha dev` starts.
const devScheduleTimeout = 30 * time.Second

// applyDevSchedules applies the default schedules (the daily backup...), printing one line
// per schedule. A failure is a warning: dev runs on without them.
func applyDevSchedules(ctx context.Context, out io.Writer, log *slog.Logger, tc client.Client, cfg *config.Config) {
	ctx, cancel := context.WithTimeout(ctx, devScheduleTimeout)
	defer cancel()
	if _, err := schedules.Apply(ctx, tc, cfg, out); err != nil {
		log.Warn("default schedules not applied", "subsystem", "schedules", "err", err)
		fmt.Fprintln(out, "warning: schedules not applied (see above); akosha dev runs on without them, retry with: akosha schedule apply")
	}
}

func orNone(v, format string) string {
	if v == "" {
		return "(disabled)"
	}
	return fmt.Sprintf(format, v)
}

// shardIDGiven refuses a worker of a cluster of several shards whose shard id nobody set:
// it would silently run as shard 0 beside the real shard 0 (say a StatefulSet pod on a
// Kubernetes without the pod-index label, whose AKOSHA_SHARD_ID comes out empty).
func shardIDGiven(cfg *config.Config, flag bool) error {
	if cfg.Shard.Count <= 1 || flag || cfg.Source("shard.id") != "default" {
		return nil
	}
	return fmt.Errorf("shard.count is %d but this worker's shard id is not set: give --shard N or AKOSHA_SHARD_ID (in Kubernetes 1.28+ from the pod-index label)", cfg.Shard.Count)
}
