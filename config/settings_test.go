package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestSettingsSources(t *testing.T) {
	setup(t)
	t.Setenv("AKOSHA_WARM_PATH", "/env/warm")
	t.Setenv("AKOSHA_SHARDS", "4")
	c, err := Load(writeConfig(t, "mode: standard\nlogging:\n  level: debug\nshard:\n  count: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"mode":                       "file",
		"logging.level":              "file",
		"storage.warm.path":          "env",
		"shard.count":                "env",
		"storage.hot.path":           "default",
		"api.addr":                   "default",
		"api.token":                  "default",
		"monitoring.prometheus_port": "default",
	}
	for key, source := range want {
		if got := setting(t, c, key).Source; got != source {
			t.Errorf("%s source = %q, want %q", key, got, source)
		}
	}
	if got := setting(t, c, "shard.count").Value; got != "4" {
		t.Errorf("shard.count = %q, want 4", got)
	}
}

func TestSettingsOrderAndKeys(t *testing.T) {
	setup(t)
	s := Default().Settings()
	index := map[string]int{}
	envs := map[string]string{}
	for i, x := range s {
		if _, dup := index[x.Key]; dup {
			t.Errorf("duplicate key %q", x.Key)
		}
		index[x.Key] = i
		if x.Env == "" {
			continue
		}
		if other, dup := envs[x.Env]; dup {
			t.Errorf("%s overrides both %s and %s", x.Env, other, x.Key)
		}
		envs[x.Env] = x.Key
	}
	// Struct order, spot-checked across sections.
	order := []string{"mode", "environment", "data_dir", "allow_project_paths",
		"storage.hot.backend", "storage.hot.wal_segment_bytes", "storage.warm.path", "storage.cold.endpoint",
		"backup.retention_days", "api.max_batch", "monitoring.disk_usage_critical_percent",
		"logging.format", "temporal.api_key", "shard.count", "cache.db", "maintenance.monthly_hour"}
	for i := 1; i < len(order); i++ {
		a, okA := index[order[i-1]]
		b, okB := index[order[i]]
		if !okA || !okB || a >= b {
			t.Errorf("%s (%d, %v) should come before %s (%d, %v)", order[i-1], a, okA, order[i], b, okB)
		}
	}
	if got, want := s[len(s)-1].Key, "maintenance.monthly_hour"; got != want {
		t.Errorf("last key = %q, want %q", got, want)
	}
	wantEnv := map[string]string{
		"data_dir":                              "AKOSHA_HOME",
		"shard.count":                           "AKOSHA_SHARDS",
		"temporal.address":                      "TEMPORAL_ADDRESS",
		"cache.host":                            "AKOSHA_REDIS_HOST",
		"backup.retention_days":                 "AKOSHA_BACKUP_RETENTION_DAYS",
		"storage.warm.num_partitions":           "",
		"monitoring.disk_usage_warning_percent": "",
	}
	for key, env := range wantEnv {
		if got := s[index[key]].Env; got != env {
			t.Errorf("%s env = %q, want %q", key, got, env)
		}
	}
}

func TestSecretsHidden(t *testing.T) {
	setup(t)
	const token, jwt, apiKey = "tok-5ecret-1-0123456789", "jwt-5ecret-2-0123456789abcdef0123456", "tmp-5ecret-3"
	t.Setenv("AKOSHA_API_TOKEN", token)
	t.Setenv("TEMPORAL_API_KEY", apiKey)
	c, err := Load(writeConfig(t, "environment: production\napi:\n  jwt_secret: "+jwt+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Token != token || c.API.JWTSecret != jwt || c.Temporal.APIKey != apiKey {
		t.Fatal("secrets were not loaded")
	}
	for key, source := range map[string]string{"api.token": "env", "api.jwt_secret": "file", "temporal.api_key": "env"} {
		s := setting(t, c, key)
		if !s.Secret || s.Value != "(set)" || s.Source != source {
			t.Errorf("%s = %+v, want secret (set) from %s", key, s, source)
		}
	}
	for _, format := range []string{"table", "json"} {
		var b strings.Builder
		if err := WriteSettings(&b, c.Settings(), format); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, secret := range []string{token, jwt, apiKey} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output contains secret %q", format, secret)
			}
		}
		if !strings.Contains(out, "(set)") || !strings.Contains(out, "AKOSHA_API_TOKEN") {
			t.Errorf("%s output lacks the api.token row:\n%s", format, out)
		}
	}

	setup(t)
	if got := setting(t, Default(), "api.token").Value; got != "(unset)" {
		t.Errorf("unset api.token = %q, want (unset)", got)
	}
}

func TestWriteSettings(t *testing.T) {
	s := []Setting{
		{Key: "mode", Env: "AKOSHA_MODE", Value: "lite", Source: "default"},
		{Key: "storage.warm.num_partitions", Value: "256", Source: "file"},
	}

	var b strings.Builder
	if err := WriteSettings(&b, s, "table"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want 3:\n%s", len(lines), b.String())
	}
	if got, want := strings.Fields(lines[0]), []string{"KEY", "VALUE", "SOURCE", "ENV"}; !reflect.DeepEqual(got, want) {
		t.Errorf("header = %q, want %q", got, want)
	}
	if got, want := strings.Fields(lines[2]), []string{"storage.warm.num_partitions", "256", "file", "-"}; !reflect.DeepEqual(got, want) {
		t.Errorf("row = %q, want %q", got, want)
	}
	for _, col := range []struct{ header, row1, row2 string }{{"VALUE", "lite", "256"}, {"SOURCE", "default", "file"}, {"ENV", "AKOSHA_MODE", "-"}} {
		h, r1, r2 := strings.Index(lines[0], col.header), strings.Index(lines[1], col.row1), strings.LastIndex(lines[2], col.row2)
		if h != r1 || h != r2 {
			t.Errorf("column %s not aligned: offsets %d, %d, %d", col.header, h, r1, r2)
		}
	}

	b.Reset()
	if err := WriteSettings(&b, s, "json"); err != nil {
		t.Fatal(err)
	}
	var got []Setting
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatalf("json output: %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("json round trip = %+v, want %+v", got, s)
	}

	if err := WriteSettings(&b, s, "yaml"); err == nil {
		t.Error("WriteSettings(yaml) succeeded, want error")
	}
}
