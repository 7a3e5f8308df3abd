// Package tclient dials Temporal from Akosha's configuration: address, namespace, TLS or
// mTLS, and an API key for Temporal Cloud.
package tclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/akosha/akosha/config"
)

// Options builds client options from cfg.
func Options(cfg *config.Config, logger *slog.Logger) (client.Options, error) {
	t := cfg.Temporal
	opts := client.Options{
		HostPort:  t.Address,
		Namespace: t.Namespace,
	}
	if logger != nil {
		opts.Logger = sdklog.NewStructuredLogger(logger.With("subsystem", "temporal-client"))
	}
	if t.TLSCert != "" || t.TLSKey != "" || t.TLSCA != "" || t.TLSServerName != "" || t.APIKey != "" {
		tc := &tls.Config{ServerName: t.TLSServerName, MinVersion: tls.VersionTLS12}
		if (t.TLSCert == "") != (t.TLSKey == "") {
			return opts, errors.New("temporal.tls_cert (TEMPORAL_TLS_CERT) and temporal.tls_key (TEMPORAL_TLS_KEY) must be set together")
		}
		if t.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(t.TLSCert, t.TLSKey)
			if err != nil {
				return opts, fmt.Errorf("temporal.tls_cert/tls_key: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if t.TLSCA != "" {
			pem, err := os.ReadFile(t.TLSCA)
			if err != nil {
				return opts, fmt.Errorf("temporal.tls_ca (TEMPORAL_TLS_CA): %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("temporal.tls_ca (TEMPORAL_TLS_CA): no certificate in %s", t.TLSCA)
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	if t.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(t.APIKey)
	}
	return opts, nil
}

// Dial connects to Temporal, failing with an error that names the address when it is
// unreachable.
func Dial(ctx context.Context, cfg *config.Config, logger *slog.Logger) (client.Client, error) {
	opts, err := Options(cfg, logger)
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s; set TEMPORAL_ADDRESS or --address): %w", cfg.Temporal.Address, cfg.Temporal.Namespace, err)
	}
	return c, nil
}
