package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/akosha/akosha/internal/fsutil"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   string // substring of the error; "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"mode", func(c *Config) { c.Mode = "heavy" }, `mode (AKOSHA_MODE): must be one of lite, standard; got "heavy"`},
		{"maintenance hour", func(c *Config) { c.Maintenance.DailyHour = 24 }, "maintenance.daily_hour: 24: want an hour of the day"},
		{"maintenance day", func(c *Config) { c.Maintenance.WeeklyDay = "Sun" }, "maintenance.weekly_day"},
		{"maintenance month day", func(c *Config) { c.Maintenance.MonthlyDay = 31 }, "maintenance.monthly_day: 31"},
		{"environment", func(c *Config) { c.Environment = "prod" }, "environment (AKOSHA_ENVIRONMENT)"},
		{"hot backend", func(c *Config) { c.Storage.Hot.Backend = "duckdb-memory" }, "storage.hot.backend (AKOSHA_HOT_BACKEND)"},
		{"wal off", func(c *Config) { c.Storage.Hot.WriteAheadLog = false }, "storage.hot.write_ahead_log: must be true"},
		{"wal segment too small", func(c *Config) { c.Storage.Hot.WALSegmentBytes = mib - 1 }, "storage.hot.wal_segment_bytes (AKOSHA_WAL_SEGMENT_BYTES)"},
		{"wal segment minimum", func(c *Config) { c.Storage.Hot.WALSegmentBytes = mib }, ""},
		{"warm backend", func(c *Config) { c.Storage.Warm.Backend = "duckdb-nvme" }, "storage.warm.backend (AKOSHA_WARM_BACKEND)"},
		{"warm hdd", func(c *Config) { c.Storage.Warm.Backend = "duckdb-hdd" }, ""},
		{"warm threads", func(c *Config) { c.Storage.Warm.Threads = 0 }, "storage.warm.threads: must be at least 1"},
		{"cold backend", func(c *Config) { c.Storage.Cold.Backend = "gcs" }, "storage.cold.backend (AKOSHA_COLD_BACKEND)"},
		{"s3 needs bucket", func(c *Config) { c.Storage.Cold.Backend = "s3" }, "storage.cold.bucket (AKOSHA_COLD_BUCKET): required"},
		{"s3 with bucket", func(c *Config) { c.Storage.Cold.Backend, c.Storage.Cold.Bucket = "s3", "b" }, ""},
		{"disabled cold unchecked", func(c *Config) { c.Storage.Cold.Enabled, c.Storage.Cold.Backend = false, "gcs" }, ""},
		{"retention", func(c *Config) { c.Backup.RetentionDays = 0 }, "backup.retention_days (AKOSHA_BACKUP_RETENTION_DAYS)"},
		{"min keep", func(c *Config) { c.Backup.MinKeep = 0 }, "backup.min_keep (AKOSHA_BACKUP_MIN_KEEP): must be at least 1"},
		{"compression", func(c *Config) { c.Backup.Compression = "lz4" }, "backup.compression (AKOSHA_BACKUP_COMPRESSION)"},
		{"gzip", func(c *Config) { c.Backup.Compression = "gzip" }, ""},
		{"api addr without port", func(c *Config) { c.API.Addr = "8682" }, "api.addr (AKOSHA_API_ADDR)"},
		{"api addr port zero", func(c *Config) { c.API.Addr = ":0" }, "api.addr (AKOSHA_API_ADDR)"},
		{"api addr host", func(c *Config) { c.API.Addr = "127.0.0.1:8682" }, ""},
		{"max batch", func(c *Config) { c.API.MaxBatch = 0 }, "api.max_batch: must be at least 1"},
		{"prometheus port zero", func(c *Config) { c.Monitoring.PrometheusPort = 0 }, "monitoring.prometheus_port (AKOSHA_PROMETHEUS_PORT): port must be in 1-65535"},
		{"prometheus port high", func(c *Config) { c.Monitoring.PrometheusPort = 65536 }, "monitoring.prometheus_port (AKOSHA_PROMETHEUS_PORT)"},
		{"prometheus port max", func(c *Config) { c.Monitoring.PrometheusPort = 65535 }, ""},
		{"warning equals critical", func(c *Config) { c.Monitoring.DiskUsageWarningPercent = 90 }, "monitoring.disk_usage_warning_percent"},
		{"critical above 100", func(c *Config) { c.Monitoring.DiskUsageCriticalPercent = 101 }, "monitoring.disk_usage_critical_percent: must be at most 100"},
		{"critical 100", func(c *Config) { c.Monitoring.DiskUsageCriticalPercent = 100 }, ""},
		{"log level", func(c *Config) { c.Logging.Level = "verbose" }, "logging.level (AKOSHA_LOG_LEVEL)"},
		{"log format", func(c *Config) { c.Logging.Format = "xml" }, "logging.format (AKOSHA_LOG_FORMAT)"},
		{"temporal address", func(c *Config) { c.Temporal.Address = "localhost" }, "temporal.address (TEMPORAL_ADDRESS)"},
		{"tls cert without key", func(c *Config) { c.Temporal.TLSCert = "/etc/c.pem" }, "temporal.tls_cert (TEMPORAL_TLS_CERT)"},
		{"tls pair", func(c *Config) { c.Temporal.TLSCert, c.Temporal.TLSKey = "/etc/c.pem", "/etc/k.pem" }, ""},
		{"shard id equals count", func(c *Config) { c.Shard.ID = 1 }, "shard.id (AKOSHA_SHARD_ID)"},
		{"shard id negative", func(c *Config) { c.Shard.ID = -1 }, "shard.id (AKOSHA_SHARD_ID)"},
		{"shard count zero", func(c *Config) { c.Shard.Count = 0 }, "shard.count (AKOSHA_SHARDS)"},
		{"last shard", func(c *Config) { c.Shard.ID, c.Shard.Count = 3, 4 }, ""},
		{"production without credential", func(c *Config) { c.Environment = "production" }, "api.token (AKOSHA_API_TOKEN)"},
		{"production with token", func(c *Config) { c.Environment, c.API.Token = "production", "test-token-0123456789" }, ""},
		{"production with jwt secret", func(c *Config) { c.Environment, c.API.JWTSecret = "production", strings.Repeat("k", 32) }, ""},
		{"production short token", func(c *Config) { c.Environment, c.API.Token = "production", "short-token" }, "api.token (AKOSHA_API_TOKEN): is 11 bytes"},
		{"staging short jwt secret", func(c *Config) { c.Environment, c.API.JWTSecret = "staging", strings.Repeat("k", 31) }, "api.jwt_secret (AKOSHA_JWT_SECRET): is 31 bytes"},
		{"development short token", func(c *Config) { c.API.Token = "t" }, ""},
		{"age recipient", func(c *Config) { c.Backup.AgeRecipients = "age1notarecipient" }, `backup.age_recipients (AKOSHA_BACKUP_AGE_RECIPIENTS): not a list of age X25519 recipients (age1..., from age-keygen -y): recipient "age1notarecipient"`},
		{"jwt secret without audience", func(c *Config) { c.API.JWTSecret, c.API.JWTAudience = strings.Repeat("k", 32), " " }, "api.jwt_audience (AKOSHA_JWT_AUDIENCE): must be set"},
		{"staging without credential", func(c *Config) { c.Environment = "staging" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setup(t)
			c := Default()
			tt.modify(c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate succeeded, want error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			var fe *FieldError
			if err != nil && !errors.As(err, &fe) {
				t.Errorf("error %v is not a *FieldError", err)
			}
		})
	}
}

func TestIsolation(t *testing.T) {
	repo := t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	wd := filepath.Join(repo, "cmd", "akosha")
	if err := os.MkdirAll(wd, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.EvalSymlinks(repo)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(repo, link); err != nil {
		t.Fatal(err)
	}
	inside := "data must not be written inside the project checkout " + root +
		"; use ~/.akosha/... or set AKOSHA_ALLOW_PROJECT_PATHS=true"

	tests := []struct {
		name string
		file string
		env  map[string]string
		want []string // substrings of the error; nil means allowed
	}{
		{"defaults", "", nil, nil},
		{"relative warm path", "storage:\n  warm:\n    path: ./data/warm\n", nil,
			[]string{`storage.warm.path (AKOSHA_WARM_PATH): "./data/warm" is a relative path`, "AKOSHA_ALLOW_PROJECT_PATHS=true"}},
		{"relative data_dir", "", map[string]string{"AKOSHA_HOME": "data"},
			[]string{`data_dir (AKOSHA_HOME): "data" is a relative path`}},
		{"tilde user not expanded", "", map[string]string{"AKOSHA_BACKUP_PATH": "~akosha/b"},
			[]string{`backup.path (AKOSHA_BACKUP_PATH): "~akosha/b" is a relative path`}},
		{"warm path inside checkout", "", map[string]string{"AKOSHA_WARM_PATH": filepath.Join(repo, "data", "warm")},
			[]string{"storage.warm.path (AKOSHA_WARM_PATH)", filepath.Join(repo, "data", "warm"), inside}},
		{"data_dir inside checkout", "data_dir: " + filepath.Join(repo, ".akosha") + "\n", nil,
			[]string{"data_dir (AKOSHA_HOME)", inside}},
		{"checkout root itself", "", map[string]string{"AKOSHA_BACKUP_PATH": repo}, []string{"backup.path (AKOSHA_BACKUP_PATH)", inside}},
		{"dotdot into checkout", "", map[string]string{"AKOSHA_WARM_PATH": repo + "/x/../warm"}, []string{"storage.warm.path", inside}},
		{"inside via symlink", "", map[string]string{"AKOSHA_WAL_PATH": filepath.Join(link, "wal")}, []string{"storage.hot.wal_path (AKOSHA_WAL_PATH)", inside}},
		{"dotdot-named dir inside checkout", "", map[string]string{"AKOSHA_WARM_PATH": filepath.Join(repo, "..data")}, []string{"storage.warm.path", inside}},
		{"sibling sharing a prefix", "", map[string]string{"AKOSHA_WARM_PATH": repo + "-data/warm"}, nil},
		{"cold path unchecked for s3", "storage:\n  cold:\n    backend: s3\n    bucket: b\n    path: ./cold\n", nil, nil},
		{"cold path checked for file", "storage:\n  cold:\n    path: ./cold\n", nil, []string{"storage.cold.path (AKOSHA_COLD_PATH)"}},
		{"allowed by env", "storage:\n  warm:\n    path: ./data/warm\n",
			map[string]string{"AKOSHA_HOME": filepath.Join(repo, "data"), "AKOSHA_ALLOW_PROJECT_PATHS": "true"}, nil},
		{"allowed by file", "allow_project_paths: true\ndata_dir: " + repo + "\nstorage:\n  warm:\n    path: ./data/warm\n", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setup(t)
			pinWorkdir(t, wd)
			setEnv(t, tt.env)
			_, err := loadContent(t, tt.file)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Load succeeded, want isolation error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestIsolationDataDirOnce checks that a bad data_dir is reported once,
// not again for every path derived from it, while explicit paths still are.
func TestIsolationDataDirOnce(t *testing.T) {
	setup(t)
	t.Setenv("AKOSHA_HOME", "data")
	t.Setenv("AKOSHA_WARM_PATH", "warm")
	_, err := Load("")
	if err == nil {
		t.Fatal("Load succeeded, want isolation error")
	}
	msg := err.Error()
	for _, w := range []string{`data_dir (AKOSHA_HOME): "data"`, `storage.warm.path (AKOSHA_WARM_PATH): "warm"`} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	for _, key := range []string{"storage.hot.path", "storage.hot.wal_path", "storage.cold.path", "backup.path"} {
		if strings.Contains(msg, key) {
			t.Errorf("error %q reports derived %s again", msg, key)
		}
	}
}

func TestFindCheckout(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mkdir := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	repo := filepath.Join(base, "repo")
	mkdir(filepath.Join(repo, ".git"))
	mkdir(filepath.Join(repo, "a", "b"))
	worktree := filepath.Join(base, "worktree") // .git is a file in worktrees
	mkdir(filepath.Join(worktree, "sub"))
	if err := os.WriteFile(filepath.Join(worktree, ".git"), []byte("gitdir: ../repo/.git\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(base, "plain")
	mkdir(plain)

	tests := []struct{ dir, want string }{
		{repo, repo},
		{filepath.Join(repo, "a", "b"), repo},
		{filepath.Join(worktree, "sub"), worktree},
	}
	for _, tt := range tests {
		if got := findCheckout(tt.dir); got != tt.want {
			t.Errorf("findCheckout(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
	// plain may itself sit inside some checkout; it must not be found at plain.
	if got := findCheckout(plain); got == plain || fsutil.Within(got, plain) && got != "" {
		t.Errorf("findCheckout(%q) = %q, want a directory above it or none", plain, got)
	}
}
