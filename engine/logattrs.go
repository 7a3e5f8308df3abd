package engine

import (
	"context"
	"log/slog"
	"slices"
)

type logAttrsKey struct{}

// WithLogAttrs returns ctx carrying attrs (slog key/value pairs, e.g. a workflow id, run
// id, shard and step) that the engine adds to the lines it logs for calls made with it —
// also from its writer goroutine, for the request the call queued.
func WithLogAttrs(ctx context.Context, attrs ...any) context.Context {
	// A new slice: two contexts derived from one parent must not share a backing array.
	return context.WithValue(ctx, logAttrsKey{}, slices.Concat(logAttrs(ctx), attrs))
}

func logAttrs(ctx context.Context) []any {
	if ctx == nil {
		return nil
	}
	a, _ := ctx.Value(logAttrsKey{}).([]any)
	return a
}

// logFor is the engine's logger with ctx's attrs.
func (e *Engine) logFor(ctx context.Context) *slog.Logger {
	if a := logAttrs(ctx); len(a) > 0 {
		return e.log.With(a...)
	}
	return e.log
}
