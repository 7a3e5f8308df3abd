package shardmap

import (
	"fmt"
	"testing"
)

// The mapping is pinned: data is placed by it.
func TestPinned(t *testing.T) {
	for _, c := range []struct {
		id    string
		count int
		want  int
	}{
		{"claude-prod-1", 1, 0},
		{"claude-prod-1", 3, 0},
		{"claude-prod-2", 3, 2},
		{"system-7", 3, 0},
		{"system-7", 16, 15},
		{"", 3, 1},
	} {
		if got := Of(c.id, c.count); got != c.want {
			t.Errorf("Of(%q, %d) = %d, want %d", c.id, c.count, got, c.want)
		}
	}
}

// Spread and stability: 10,000 systems over 3 shards land within 5% of a third each, and
// growing to 4 shards moves about a quarter of them, all to the new shard.
func TestSpreadAndGrowth(t *testing.T) {
	n := [3]int{}
	moved := 0
	for i := range 10000 {
		id := fmt.Sprint("system-", i)
		s3, s4 := Of(id, 3), Of(id, 4)
		n[s3]++
		if s4 != s3 {
			moved++
			if s4 != 3 {
				t.Fatalf("%s moved from %d to %d, not to the new shard", id, s3, s4)
			}
		}
	}
	for s, c := range n {
		if c < 3167 || c > 3500 {
			t.Errorf("shard %d has %d of 10000", s, c)
		}
	}
	if moved < 2250 || moved > 2750 {
		t.Errorf("%d of 10000 moved to the 4th shard, want about 2500", moved)
	}
}
