package engine

import (
	"context"
	"slices"
	"testing"
)

// Contexts derived from one parent keep their own attributes, even when the parent's
// list has room to grow in place.
func TestWithLogAttrsSiblings(t *testing.T) {
	parent := context.WithValue(context.Background(), logAttrsKey{}, make([]any, 2, 8))
	copy(logAttrs(parent), []any{"shard", 0})
	a := WithLogAttrs(parent, "step", "a")
	b := WithLogAttrs(parent, "step", "b")
	if got := logAttrs(a); !slices.Equal(got, []any{"shard", 0, "step", "a"}) {
		t.Fatalf("first child's attrs %v", got)
	}
	if got := logAttrs(b); !slices.Equal(got, []any{"shard", 0, "step", "b"}) {
		t.Fatalf("second child's attrs %v", got)
	}
}
