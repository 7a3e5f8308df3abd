package tclient

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/akosha/akosha/config"
)

func TestOptions(t *testing.T) {
	cfg := config.Default()
	opts, err := Options(cfg, nil)
	if err != nil || opts.ConnectionOptions.TLS != nil || opts.Credentials != nil || opts.HostPort != "127.0.0.1:7233" {
		t.Fatalf("plain options: %+v %v", opts, err)
	}
	cfg.Temporal.APIKey = "k"
	if opts, err = Options(cfg, nil); err != nil || opts.Credentials == nil || opts.ConnectionOptions.TLS == nil {
		t.Fatalf("API key needs TLS and credentials: %+v %v", opts, err)
	}

	bad := []struct {
		set  func(*config.Config)
		want string
	}{
		{func(c *config.Config) { c.Temporal.TLSCert = "/x.pem" }, "TEMPORAL_TLS_KEY"},
		{func(c *config.Config) { c.Temporal.TLSKey = "/x.pem" }, "TEMPORAL_TLS_KEY"}, // not a silent plaintext dial
		{func(c *config.Config) { c.Temporal.TLSCA = filepath.Join(t.TempDir(), "missing.pem") }, "TEMPORAL_TLS_CA"},
		{func(c *config.Config) {
			p := filepath.Join(t.TempDir(), "ca.pem")
			os.WriteFile(p, []byte("not a certificate"), 0o600)
			c.Temporal.TLSCA = p
		}, "no certificate"},
	}
	for _, tc := range bad {
		cfg := config.Default()
		tc.set(cfg)
		if _, err := Options(cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want it to name %s", err, tc.want)
		}
	}
}
