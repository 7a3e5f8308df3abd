package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// pollInterval is the pause between readiness checks.
const pollInterval = 100 * time.Millisecond

// waitReady waits until the frontend at addr answers and knows the
// namespace, then registers the requested search attributes.
func waitReady(ctx context.Context, addr string, opts Options) error {
	quiet := slog.New(minLevelHandler{min: slog.LevelWarn, next: opts.Logger.Handler()})
	c, err := client.NewLazyClient(client.Options{
		HostPort:  addr,
		Namespace: opts.Namespace,
		Logger:    sdklog.NewStructuredLogger(quiet.With("subsystem", "devserver")),
	})
	if err != nil {
		return fmt.Errorf("devserver: client for %s: %w", addr, err)
	}
	defer c.Close()

	err = poll(ctx, func() error {
		_, err := c.WorkflowService().DescribeNamespace(ctx,
			&workflowservice.DescribeNamespaceRequest{Namespace: opts.Namespace})
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: frontend %s with namespace %q not ready: %w", addr, opts.Namespace, err)
	}
	return ensureSearchAttributes(ctx, c.OperatorService(), opts.Namespace, opts.SearchAttributes)
}

// ensureSearchAttributes registers the search attributes of want that the
// namespace lacks and waits until the frontend lists them. An attribute that
// exists with another type is an error wrapping ErrSearchAttributeType.
func ensureSearchAttributes(ctx context.Context, op operatorservice.OperatorServiceClient, namespace string, want map[string]enums.IndexedValueType) error {
	missing, err := missingSearchAttributes(ctx, op, namespace, want)
	if err != nil || len(missing) == 0 {
		return err
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("devserver: add search attributes to %q: %w", namespace, err)
	}
	// The frontend caches namespaces (refreshed every 2s by default); wait
	// until the new attributes are usable.
	return poll(ctx, func() error {
		missing, err := missingSearchAttributes(ctx, op, namespace, want)
		if err == nil && len(missing) > 0 {
			err = fmt.Errorf("search attributes %v not listed yet", slices.Sorted(maps.Keys(missing)))
		}
		return err
	})
}

// missingSearchAttributes returns the attributes of want that the namespace
// does not list.
func missingSearchAttributes(ctx context.Context, op operatorservice.OperatorServiceClient, namespace string, want map[string]enums.IndexedValueType) (map[string]enums.IndexedValueType, error) {
	if len(want) == 0 {
		return nil, nil
	}
	resp, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("devserver: list search attributes of %q: %w", namespace, err)
	}
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range want {
		if _, ok := resp.GetSystemAttributes()[name]; ok {
			return nil, fmt.Errorf("devserver: search attribute %q is a system attribute", name)
		}
		have, ok := resp.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case have != typ:
			return nil, fmt.Errorf("devserver: search attribute %q of namespace %q is %s, not %s: %w",
				name, namespace, have, typ, ErrSearchAttributeType)
		}
	}
	return missing, nil
}

// poll calls check until it returns nil or ctx ends. Errors wrapping
// ErrSearchAttributeType end it at once: waiting cannot fix them.
func poll(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil || errors.Is(err, ErrSearchAttributeType) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(pollInterval):
		}
	}
}
