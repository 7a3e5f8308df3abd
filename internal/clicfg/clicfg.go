// Package clicfg holds the global CLI flags and turns them into a resolved configuration.
package clicfg

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/config"
)

// Global flag names.
const (
	FlagConfig        = "config"
	FlagAddress       = "address"
	FlagNamespace     = "namespace"
	FlagTLSCert       = "tls-cert"
	FlagTLSKey        = "tls-key"
	FlagTLSCA         = "tls-ca"
	FlagTLSServerName = "tls-server-name"
)

// Flags are accepted by every command.
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: FlagConfig, Aliases: []string{"c"}, EnvVars: []string{"AKOSHA_CONFIG"},
			Usage: "config file (YAML); without one, built-in defaults (= config/lite.yaml) and AKOSHA_* variables apply"},
		&cli.StringFlag{Name: FlagAddress, Usage: "Temporal frontend host:port (default: temporal.address, TEMPORAL_ADDRESS, 127.0.0.1:7233)"},
		&cli.StringFlag{Name: FlagNamespace, Usage: "Temporal namespace (default: temporal.namespace, TEMPORAL_NAMESPACE, default)"},
		&cli.StringFlag{Name: FlagTLSCert, Usage: "client certificate (PEM) for mTLS to Temporal (default: temporal.tls_cert, TEMPORAL_TLS_CERT)"},
		&cli.StringFlag{Name: FlagTLSKey, Usage: "its private key (PEM) (default: temporal.tls_key, TEMPORAL_TLS_KEY)"},
		&cli.StringFlag{Name: FlagTLSCA, Usage: "CA certificate(s) (PEM) that sign Temporal's server certificate; setting it turns TLS on (default: temporal.tls_ca, TEMPORAL_TLS_CA; Temporal Cloud: the system roots)"},
		&cli.StringFlag{Name: FlagTLSServerName, Usage: "server name to verify in Temporal's certificate (default: temporal.tls_server_name, TEMPORAL_TLS_SERVER_NAME). The API key comes only from TEMPORAL_API_KEY, never a flag"},
	}
}

// Load resolves the configuration (file, env, defaults), applies the global flags on top
// and builds the logger.
func Load(c *cli.Context) (*config.Config, *slog.Logger, error) {
	cfg, err := config.Load(c.String(FlagConfig))
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	if v := c.String(FlagAddress); v != "" {
		cfg.Temporal.Address = v
	}
	if v := c.String(FlagNamespace); v != "" {
		cfg.Temporal.Namespace = v
	}
	flagged := c.String(FlagAddress) != "" || c.String(FlagNamespace) != ""
	for flag, dst := range map[string]*string{FlagTLSCert: &cfg.Temporal.TLSCert, FlagTLSKey: &cfg.Temporal.TLSKey,
		FlagTLSCA: &cfg.Temporal.TLSCA, FlagTLSServerName: &cfg.Temporal.TLSServerName} {
		if v := c.String(flag); v != "" {
			*dst, flagged = v, true
		}
	}
	if flagged { // the flags get the checks the file and environment got
		if err := cfg.Validate(); err != nil {
			return nil, nil, fmt.Errorf("config with the --address, --namespace and --tls-* flags applied: %w", err)
		}
	}
	return cfg, cfg.NewLogger(os.Stderr), nil
}

// LocalURL turns a listen address into a URL a local client can use: an unspecified host
// (":8682", "[::]:8682") becomes 127.0.0.1.
func LocalURL(addr string) string {
	if addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
