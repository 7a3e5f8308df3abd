package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigurationMatrix checks the guide's configuration matrix against
// the files shipped in this directory.
func TestConfigurationMatrix(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		override string // AKOSHA_WARM_PATH; "" means none
		want     string // "{home}" is replaced by HOME
	}{
		{"local dev", "lite.yaml", "", "{home}/.akosha/dev/warm"},
		{"docker dev", "lite.yaml", "/data/akosha/dev/warm", "/data/akosha/dev/warm"},
		{"staging", "staging.yaml", "", "/data/akosha/staging/warm"},
		{"production", "production.yaml", "/data/akosha/prod/warm", "/data/akosha/prod/warm"},
		{"production without override", "production.yaml", "", "/data/akosha/prod/warm"},
		{"production moved", "production.yaml", "/mnt/nvme/warm", "/mnt/nvme/warm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := setup(t)
			t.Setenv("AKOSHA_API_TOKEN", "test-token-0123456789")
			t.Setenv("AKOSHA_WARM_PATH", tt.override)
			c, err := Load(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := c.Storage.Warm.Path, strings.ReplaceAll(tt.want, "{home}", home); got != want {
				t.Errorf("warm path = %q, want %q", got, want)
			}
		})
	}
}

func TestShippedFiles(t *testing.T) {
	tests := []struct {
		file        string
		mode, env   string
		hot, wal    string
		cold        string // cold path, or bucket for s3
		backup      string
		logFormat   string
		coldBackend string
	}{
		{"lite.yaml", "lite", "development", "{home}/.akosha/dev/hot", "{home}/.akosha/dev/wal", "{home}/.akosha/dev/cold", "{home}/.akosha/dev/backups", "text", "file"},
		{"staging.yaml", "standard", "staging", "/data/akosha/staging/hot", "/data/akosha/staging/wal", "/data/akosha/staging/cold", "/data/akosha/staging/backups", "json", "file"},
		{"production.yaml", "standard", "production", "/data/akosha/prod/hot", "/data/akosha/prod/wal", "akosha-cold-prod", "/data/akosha/prod/backups", "json", "s3"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			home := setup(t)
			t.Setenv("AKOSHA_API_TOKEN", "test-token-0123456789")
			c, err := Load(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			cold := c.Storage.Cold.Path
			if c.Storage.Cold.Backend == "s3" {
				cold = c.Storage.Cold.Bucket
			}
			got := []string{c.Mode, c.Environment, c.Storage.Hot.Path, c.Storage.Hot.WALPath, cold, c.Backup.Path, c.Logging.Format, c.Storage.Cold.Backend}
			want := []string{tt.mode, tt.env, tt.hot, tt.wal, tt.cold, tt.backup, tt.logFormat, tt.coldBackend}
			for i := range want {
				if w := strings.ReplaceAll(want[i], "{home}", home); got[i] != w {
					t.Errorf("field %d = %q, want %q", i, got[i], w)
				}
			}
		})
	}
}

func TestLiteIsDefault(t *testing.T) {
	setup(t)
	c, err := Load("lite.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, want := c.Settings(), Default().Settings()
	for i := range want {
		if got[i].Key != want[i].Key || got[i].Value != want[i].Value {
			t.Errorf("lite.yaml %s = %q, default %q", got[i].Key, got[i].Value, want[i].Value)
		}
	}
	if got := setting(t, c, "mode").Source; got != "file" {
		t.Errorf("lite.yaml mode source = %q, want file", got)
	}
	// The data paths follow data_dir, so AKOSHA_HOME moves them.
	t.Setenv("AKOSHA_HOME", "/data/akosha/dev")
	if c, err = Load("lite.yaml"); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Storage.Warm.Path, "/data/akosha/dev/warm"; got != want {
		t.Errorf("with AKOSHA_HOME: warm path = %q, want %q", got, want)
	}
}

func TestProduction(t *testing.T) {
	setup(t)
	_, err := Load("production.yaml")
	if err == nil || !strings.Contains(err.Error(), "api.token (AKOSHA_API_TOKEN)") {
		t.Fatalf("production.yaml without a token: err = %v, want one naming AKOSHA_API_TOKEN", err)
	}

	t.Setenv("AKOSHA_JWT_SECRET", "test-jwt-secret-0123456789abcdef0123")
	t.Setenv("AKOSHA_REDIS_HOST", "")
	c, err := Load("production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cold, b, m := c.Storage.Cold, c.Backup, c.Monitoring
	checks := []struct{ name, got, want string }{
		{"cold bucket", cold.Bucket, "akosha-cold-prod"},
		{"cold prefix", cold.Prefix, "conversations/"},
		{"cold region", cold.Region, "us-west-2"},
		{"backup bucket", b.Bucket, "akosha-backups-prod"},
		{"warm codec", c.Storage.Warm.CompressionCodec, "ZSTD"},
		{"cache host", c.Cache.Host, ""},
	}
	for _, x := range checks {
		if x.got != x.want {
			t.Errorf("%s = %q, want %q", x.name, x.got, x.want)
		}
	}
	if b.RetentionDays != 30 || !m.MetricsEnabled || m.PrometheusPort != 9090 ||
		m.DiskUsageWarningPercent != 75 || m.DiskUsageCriticalPercent != 90 {
		t.Errorf("backup/monitoring = %+v %+v, want the guide's Appendix A", b, m)
	}

	// cache.host is "${AKOSHA_REDIS_HOST}" in the file; AKOSHA_REDIS_HOST
	// also overrides it directly, so both routes give the same value.
	t.Setenv("AKOSHA_REDIS_HOST", "redis.akosha-prod.svc.cluster.local")
	if c, err = Load("production.yaml"); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Cache.Host, "redis.akosha-prod.svc.cluster.local"; got != want {
		t.Errorf("cache host = %q, want %q", got, want)
	}
}

func TestShipped(t *testing.T) {
	for _, name := range []string{"lite", "staging", "production"} {
		got, err := Shipped(name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(".", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Shipped(%q) differs from %s.yaml", name, name)
		}
	}
	if _, err := Shipped("lite.yaml"); err == nil {
		t.Error(`Shipped("lite.yaml") succeeded, want error`)
	}

	setup(t)
	t.Setenv("AKOSHA_API_TOKEN", "test-token-0123456789")
	data, err := Shipped("production")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("production", data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Storage.Warm.Path, "/data/akosha/prod/warm"; got != want {
		t.Errorf("Parse(shipped production) warm path = %q, want %q", got, want)
	}
}
