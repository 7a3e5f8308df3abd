package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/clicfg"
	"github.com/akosha/akosha/worker/ingest"
)

// IngestCommand posts conversations to a worker's API: synthetic ones for demos and
// benchmarks, or NDJSON/JSON files.
func IngestCommand() *cli.Command {
	return &cli.Command{
		Name:      "ingest",
		Usage:     "post conversations to a worker (synthetic or from files)",
		ArgsUsage: "[FILE.ndjson|FILE.json ...]",
		Description: "With --synthetic N, generates N realistic conversations (8 systems, 384-d embeddings, timestamps\n" +
			"spread over --days days) and posts them in batches. Otherwise posts each FILE (.json: an array;\n" +
			"anything else: NDJSON) as one batch. Prints throughput and the API's answer for failures.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "synthetic", Usage: "generate and post N synthetic conversations"},
			&cli.IntFlag{Name: "days", Value: 1, Usage: "spread synthetic timestamps over the last D days"},
			&cli.Int64Flag{Name: "seed", Usage: "seed of the synthetic generator (default: current time, so runs do not collide)"},
			&cli.IntFlag{Name: "batch", Value: 1000, Usage: "conversations per request"},
			&cli.IntFlag{Name: "concurrency", Value: 2, Usage: "requests in flight"},
			&cli.StringFlag{Name: "url", Usage: "worker API base URL (default: from api.addr, e.g. http://127.0.0.1:8682)"},
		},
		Action: func(c *cli.Context) error {
			cfg, _, err := clicfg.Load(c)
			if err != nil {
				return err
			}
			url := c.String("url")
			if url == "" {
				url = clicfg.LocalURL(cfg.API.Addr)
			}
			cl := &apiClient{base: strings.TrimRight(url, "/"), token: cfg.API.Token, http: &http.Client{Timeout: 5 * time.Minute}}
			out := c.App.Writer
			if n := c.Int("synthetic"); n > 0 {
				seed := c.Int64("seed")
				if !c.IsSet("seed") {
					seed = time.Now().UnixNano()
				}
				return postSynthetic(c.Context, cl, out, seed, n, c.Int("days"), c.Int("batch"), c.Int("concurrency"))
			}
			if c.NArg() == 0 {
				return fmt.Errorf("ingest: give --synthetic N or one or more files")
			}
			for _, f := range c.Args().Slice() {
				if err := postFile(c.Context, cl, out, f); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

type apiClient struct {
	base, token string
	http        *http.Client
}

// fencedRetries bounds how often post retries a batch refused while writes are fenced
// (a backup's snapshot, a migration's switch: usually well under a second).
const fencedRetries = 60

// post sends one batch and decodes the API's answer. A 503 (writes fenced) is retried
// after the answer's Retry-After (at most 2 s apart, fencedRetries times): ingest is
// idempotent, so a retry never duplicates.
func (c *apiClient) post(ctx context.Context, contentType string, body []byte) (engine.IngestResult, error) {
	var res engine.IngestResult
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/conversations", bytes.NewReader(body))
		if err != nil {
			return res, err
		}
		req.Header.Set("Content-Type", contentType)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return res, fmt.Errorf("POST %s/v1/conversations: %w", c.base, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < fencedRetries {
			wait := 200 * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = min(time.Duration(s)*time.Second, 2*time.Second)
			}
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		return decodeIngest(resp, b)
	}
}

func decodeIngest(resp *http.Response, b []byte) (res engine.IngestResult, err error) {
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("POST /v1/conversations: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return res, json.Unmarshal(b, &res)
}

func postSynthetic(ctx context.Context, c *apiClient, out io.Writer, seed int64, n, days, batch, concurrency int) error {
	if batch <= 0 || concurrency <= 0 {
		return fmt.Errorf("ingest: --batch and --concurrency must be positive")
	}
	now := time.Now().UTC()
	all := ingest.Synthetic(seed, n, days, now)
	bodies := make(chan []byte, concurrency)
	go func() {
		defer close(bodies)
		for i := 0; i < len(all); i += batch {
			var buf bytes.Buffer
			ingest.EncodeNDJSON(&buf, all[i:min(i+batch, len(all))])
			select {
			case bodies <- buf.Bytes():
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		inserted, dups atomic.Int64
		wg             sync.WaitGroup
		errOnce        sync.Once
		firstErr       error
		start          = time.Now()
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range bodies {
				res, err := c.post(ctx, "application/x-ndjson", body)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				inserted.Add(int64(res.Inserted))
				dups.Add(int64(res.Duplicates))
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	el := time.Since(start)
	fmt.Fprintf(out, "ingested %d conversations (%d duplicates) in %s: %.0f conversations/s (seed %d)\n",
		inserted.Load(), dups.Load(), el.Round(time.Millisecond), float64(n)/el.Seconds(), seed)
	return nil
}

func postFile(ctx context.Context, c *apiClient, out io.Writer, path string) error {
	body, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ct := "application/x-ndjson"
	if strings.HasSuffix(path, ".json") {
		ct = "application/json"
	}
	res, err := c.post(ctx, ct, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(out, "%s: inserted %d, duplicates %d, txid %d\n", path, res.Inserted, res.Duplicates, res.TxID)
	return nil
}
