package starter

import (
	"strings"
	"testing"
	"time"

	"github.com/akosha/akosha/internal/shardmap"
	"github.com/akosha/akosha/worker/ingest"
)

func TestRouter(t *testing.T) {
	for _, c := range []struct {
		url   string
		count int
		want  []string
		err   string
	}{
		{"http://127.0.0.1:8682/", 3, []string{"http://127.0.0.1:8682"}, ""},
		{"http://akosha-shard-{shard}.akosha-shard:8682", 3, []string{"http://akosha-shard-0.akosha-shard:8682", "http://akosha-shard-1.akosha-shard:8682", "http://akosha-shard-2.akosha-shard:8682"}, ""},
		{"http://a:1, http://b:2/", 2, []string{"http://a:1", "http://b:2"}, ""},
		{"http://a:1,http://b:2", 3, nil, "2 URLs for shard.count (AKOSHA_SHARDS) 3 shards"},
		{"http://s{shard}", 0, nil, "want at least 1"},
	} {
		r, err := newRouter(c.url, &credential{}, c.count)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s over %d shards: error %v, want %q", c.url, c.count, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		var got []string
		for _, s := range r.shards {
			got = append(got, s.base)
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s over %d shards: %v, want %v", c.url, c.count, got, c.want)
		}
	}

	r, err := newRouter("http://s{shard}", &credential{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	cs := ingest.Synthetic(1, 500, 1, time.Now())
	total := 0
	for s, group := range r.split(cs) {
		total += len(group)
		for _, c := range group {
			if shardmap.Of(c.SystemID, 3) != s {
				t.Fatalf("%s went to shard %d, its shard is %d", c.SystemID, s, shardmap.Of(c.SystemID, 3))
			}
		}
	}
	if total != len(cs) {
		t.Fatalf("split kept %d of %d conversations", total, len(cs))
	}
}
