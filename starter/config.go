package starter

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/config"
	"github.com/akosha/akosha/internal/clicfg"
)

// ConfigCommand shows the resolved configuration and the shipped config files.
func ConfigCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "show the resolved configuration",
		Subcommands: []*cli.Command{
			{
				Name:  "show",
				Usage: "print every setting with its value and where it came from (env, file, default)",
				Description: "Resolution order: environment variable > config file (--config or AKOSHA_CONFIG) > default.\n" +
					"Secrets (api.token, api.jwt_secret, temporal.api_key) are shown as (set) or (unset), never their value.",
				Flags: []cli.Flag{&cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"}},
				Action: func(c *cli.Context) error {
					cfg, _, err := clicfg.Load(c)
					if err != nil {
						return err
					}
					return config.WriteSettings(c.App.Writer, cfg.Settings(), c.String("format"))
				},
			},
			{
				Name:      "shipped",
				Usage:     "print a config file shipped with akosha (lite, staging, production)",
				ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("config shipped: give one of lite, staging, production")
					}
					b, err := config.Shipped(c.Args().First())
					if err != nil {
						return err
					}
					_, err = c.App.Writer.Write(b)
					return err
				},
			},
		},
	}
}
