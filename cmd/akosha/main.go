// Command akosha runs Akosha's warm-tier storage engine and its operations workflows.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/starter"
	"github.com/akosha/akosha/worker"
)

func main() {
	app := &cli.App{
		Name:  "akosha",
		Usage: "Akosha warm tier: DuckDB storage engine with a WAL, and its operations as Temporal workflows",
		Flags: clicfg.Flags(),
		Commands: []*cli.Command{
			worker.DevCommand(),
			worker.Command(),
			starter.CheckpointCommand(),
			starter.BackupCommand(),
			starter.BackupsCommand(),
			starter.RestoreCommand(),
			starter.WALCommand(),
			starter.AgeCommand(),
			starter.MigrateCommand(),
			starter.DRCommand(),
			starter.MaintenanceCommand(),
			starter.ReportCommand(),
			starter.ColdCommand(),
			starter.HealthCommand(),
			starter.ScheduleCommand(),
			starter.IngestCommand(),
			starter.ConfigCommand(),
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "akosha:", err)
		os.Exit(1)
	}
}
