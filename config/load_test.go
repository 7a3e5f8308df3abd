package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// setup empties every variable Load reads, points HOME at a fresh
// directory, pins the isolation check's working directory outside any
// checkout, and returns HOME.
func setup(t *testing.T) string {
	t.Helper()
	for _, f := range defaults().fields() {
		if f.env != "" {
			t.Setenv(f.env, "")
		}
	}
	t.Setenv("AKOSHA_CONFIG", "")
	home := t.TempDir()
	t.Setenv("HOME", home)
	pinWorkdir(t, t.TempDir())
	return home
}

// pinWorkdir makes the isolation check see dir as the working directory.
func pinWorkdir(t *testing.T, dir string) {
	t.Helper()
	old := getwd
	getwd = func() (string, error) { return dir, nil }
	t.Cleanup(func() { getwd = old })
}

// writeConfig writes content to a fresh akosha.yaml and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "akosha.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// setEnv sets every variable in env for the rest of the test.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// loadContent loads content as the config file, or no file if content is "".
func loadContent(t *testing.T, content string) (*Config, error) {
	t.Helper()
	if content == "" {
		return Load("")
	}
	return Load(writeConfig(t, content))
}

// setting returns the setting named key.
func setting(t *testing.T, c *Config, key string) Setting {
	t.Helper()
	for _, s := range c.Settings() {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("no setting %q", key)
	return Setting{}
}

func TestLoadPrecedence(t *testing.T) {
	const warmFile = "storage:\n  warm:\n    path: /srv/warm\n"
	const portFile = "monitoring:\n  prometheus_port: 9100\n"
	const metricsFile = "monitoring:\n  metrics_enabled: false\n"
	const dataDirFile = "data_dir: /srv/ak\n"
	tests := []struct {
		name   string
		file   string // YAML content; "" means no file
		env    map[string]string
		key    string
		want   string // "{home}" is replaced by HOME
		source string
	}{
		{"path default", "", nil, "storage.warm.path", "{home}/.akosha/dev/warm", "default"},
		{"path file", warmFile, nil, "storage.warm.path", "/srv/warm", "file"},
		{"path env over file", warmFile, map[string]string{"AKOSHA_WARM_PATH": "/env/warm"}, "storage.warm.path", "/env/warm", "env"},
		{"empty env ignored", warmFile, map[string]string{"AKOSHA_WARM_PATH": ""}, "storage.warm.path", "/srv/warm", "file"},
		{"int default", "", nil, "monitoring.prometheus_port", "9090", "default"},
		{"int file", portFile, nil, "monitoring.prometheus_port", "9100", "file"},
		{"int env over file", portFile, map[string]string{"AKOSHA_PROMETHEUS_PORT": "9200"}, "monitoring.prometheus_port", "9200", "env"},
		{"int64 env", "", map[string]string{"AKOSHA_WAL_SEGMENT_BYTES": "2097152"}, "storage.hot.wal_segment_bytes", "2097152", "env"},
		{"bool default", "", nil, "monitoring.metrics_enabled", "true", "default"},
		{"bool file", metricsFile, nil, "monitoring.metrics_enabled", "false", "file"},
		{"bool env over file", metricsFile, map[string]string{"AKOSHA_METRICS_ENABLED": "true"}, "monitoring.metrics_enabled", "true", "env"},
		{"data_dir env over file", dataDirFile, map[string]string{"AKOSHA_HOME": "/x"}, "data_dir", "/x", "env"},
		{"derived from file data_dir", dataDirFile, nil, "storage.warm.path", "/srv/ak/warm", "default"},
		{"derived from env data_dir", dataDirFile, map[string]string{"AKOSHA_HOME": "/x"}, "storage.hot.wal_path", "/x/wal", "default"},
		{"derived backups", "", map[string]string{"AKOSHA_HOME": "/x"}, "backup.path", "/x/backups", "default"},
		{"explicit env path beats derived", dataDirFile, map[string]string{"AKOSHA_HOME": "/x", "AKOSHA_WARM_PATH": "/w"}, "storage.warm.path", "/w", "env"},
		{"file path not moved by AKOSHA_HOME", warmFile, map[string]string{"AKOSHA_HOME": "/x"}, "storage.warm.path", "/srv/warm", "file"},
		{"empty file path derives", "storage:\n  cold:\n    path: \"\"\n", map[string]string{"AKOSHA_HOME": "/x"}, "storage.cold.path", "/x/cold", "default"},
		{"null file value keeps default", "logging:\n  level:\n", nil, "logging.level", "info", "default"},
		{"var expansion", "cache:\n  host: \"${AKOSHA_TEST_REDIS}:1\"\n", map[string]string{"AKOSHA_TEST_REDIS": "redis.local"}, "cache.host", "redis.local:1", "file"},
		{"unset var expands to empty", "cache:\n  host: \"${AKOSHA_TEST_UNSET}\"\n", nil, "cache.host", "", "file"},
		{"env over expanded file", "cache:\n  host: \"${AKOSHA_TEST_REDIS}\"\n", map[string]string{"AKOSHA_TEST_REDIS": "a", "AKOSHA_REDIS_HOST": "b"}, "cache.host", "b", "env"},
		{"log level normalised", "logging:\n  level: INFO\n", nil, "logging.level", "info", "file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := setup(t)
			t.Setenv("AKOSHA_TEST_UNSET", "")
			setEnv(t, tt.env)
			c, err := loadContent(t, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			s := setting(t, c, tt.key)
			if want := strings.ReplaceAll(tt.want, "{home}", home); s.Value != want {
				t.Errorf("%s = %q, want %q", tt.key, s.Value, want)
			}
			if s.Source != tt.source {
				t.Errorf("%s source = %q, want %q", tt.key, s.Source, tt.source)
			}
		})
	}
}

func TestLoadConfigFileSelection(t *testing.T) {
	setup(t)
	fromEnv := writeConfig(t, "mode: standard\n")
	fromFlag := writeConfig(t, "logging:\n  format: json\n")
	t.Setenv("AKOSHA_CONFIG", fromEnv)

	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Mode, "standard"; got != want {
		t.Errorf("AKOSHA_CONFIG file: Mode = %q, want %q", got, want)
	}

	c, err = Load(fromFlag)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != "lite" || c.Logging.Format != "json" {
		t.Errorf("flag file: Mode = %q, Format = %q; want the flag's file only (lite, json)", c.Mode, c.Logging.Format)
	}

	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want os.ErrNotExist", err)
	}
}

func TestLoadExpandsHome(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		key  string
		want string // relative to HOME
	}{
		{"default", "", nil, "storage.hot.path", ".akosha/dev/hot"},
		{"file tilde alone", "data_dir: \"~\"\n", nil, "data_dir", ""},
		{"derived from file tilde", "data_dir: \"~/ak\"\n", nil, "storage.warm.path", "ak/warm"},
		{"file path", "storage:\n  warm:\n    path: \"~/w\"\n", nil, "storage.warm.path", "w"},
		{"env path", "", map[string]string{"AKOSHA_COLD_PATH": "~/c"}, "storage.cold.path", "c"},
		{"env data_dir", "", map[string]string{"AKOSHA_HOME": "~/h"}, "backup.path", "h/backups"},
		{"env file path", "", map[string]string{"TEMPORAL_TLS_CA": "~/ca.pem"}, "temporal.tls_ca", "ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := setup(t)
			setEnv(t, tt.env)
			c, err := loadContent(t, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := setting(t, c, tt.key).Value, filepath.Join(home, tt.want); got != want {
				t.Errorf("%s = %q, want %q", tt.key, got, want)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // substrings of the error; "{file}" is replaced by the path
	}{
		{"unknown key", "mode: lite\nstorage:\n  warm:\n    backend: duckdb-ssd\n    pathh: /x\n", []string{`{file}:5: unknown key "storage.warm.pathh"`}},
		{"unknown section", "stroage:\n  warm: {}\n", []string{`{file}:1: unknown key "stroage"`}},
		{"every unknown key", "foo: 1\nbar: 2\n", []string{`{file}:1: unknown key "foo"`, `{file}:2: unknown key "bar"`}},
		{"wrong type int", "monitoring:\n  prometheus_port: lots\n", []string{`{file}:2: monitoring.prometheus_port: invalid integer "lots"`}},
		{"wrong type bool", "storage:\n  cold:\n    enabled: maybe\n", []string{`{file}:3: storage.cold.enabled: invalid boolean "maybe"`}},
		{"mapping for scalar", "mode:\n  a: b\n", []string{"{file}:2: mode: want a string, got a mapping"}},
		{"sequence for int", "shard:\n  count: [1, 2]\n", []string{"{file}:2: shard.count: want an integer, got a sequence"}},
		{"scalar for section", "storage: fast\n", []string{`{file}:1: storage: want a mapping, got "fast"`}},
		{"duplicate key", "mode: lite\nmode: standard\n", []string{`{file}:2: duplicate key "mode"`}},
		{"top level sequence", "- a\n", []string{"{file}:1: top level must be a mapping"}},
		{"syntax", "mode: [\n", []string{"parse {file}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setup(t)
			file := writeConfig(t, tt.file)
			_, err := Load(file)
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			for _, w := range tt.want {
				if w = strings.ReplaceAll(w, "{file}", file); !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadEmptyFile(t *testing.T) {
	for _, content := range []string{"", "# only a comment\n"} {
		setup(t)
		c, err := Load(writeConfig(t, content))
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if got := setting(t, c, "mode").Source; got != "default" {
			t.Errorf("%q: mode source = %q, want default", content, got)
		}
	}
}

func TestLoadEnvErrors(t *testing.T) {
	tests := []struct{ env, value, key string }{
		{"AKOSHA_PROMETHEUS_PORT", "abc", "monitoring.prometheus_port"},
		{"AKOSHA_METRICS_ENABLED", "maybe", "monitoring.metrics_enabled"},
		{"AKOSHA_WAL_SEGMENT_BYTES", "64MiB", "storage.hot.wal_segment_bytes"},
		{"AKOSHA_SHARDS", "two", "shard.count"},
		{"AKOSHA_ALLOW_PROJECT_PATHS", "sure", "allow_project_paths"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			setup(t)
			t.Setenv(tt.env, tt.value)
			_, err := Load("")
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			for _, w := range []string{tt.env, tt.key, `"` + tt.value + `"`} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Env != tt.env {
				t.Errorf("error %v is not a *FieldError for %s", err, tt.env)
			}
		})
	}
}

func TestLogger(t *testing.T) {
	tests := []struct {
		level, format string
		log           func(c *Config, b *strings.Builder)
		want, notWant string
	}{
		{"warn", "json", func(c *Config, b *strings.Builder) {
			l := c.NewLogger(b)
			l.Info("quiet")
			l.Warn("loud")
		}, `"level":"WARN","msg":"loud"`, "quiet"},
		{"debug", "text", func(c *Config, b *strings.Builder) {
			c.NewLogger(b).Debug("detail")
		}, "level=DEBUG msg=detail", "{"},
	}
	for _, tt := range tests {
		c := Default()
		c.Logging.Level, c.Logging.Format = tt.level, tt.format
		var b strings.Builder
		tt.log(c, &b)
		if out := b.String(); !strings.Contains(out, tt.want) || strings.Contains(out, tt.notWant) {
			t.Errorf("%s/%s logged %q, want %q and not %q", tt.level, tt.format, out, tt.want, tt.notWant)
		}
	}
}
