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
	"github.com/akosha/akosha/internal/shardmap"
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
			"anything else: NDJSON) as one batch. Prints throughput and the API's answer for failures.\n" +
			"A worker takes only its own shard's conversations (421 for another's). With several shards\n" +
			"(shard.count, AKOSHA_SHARDS), give --url with {shard} in it and the command routes each\n" +
			"conversation by its system_id to its shard's worker (or give one URL per shard, comma-separated,\n" +
			"shard 0 first):\n" +
			"  AKOSHA_SHARDS=4 akosha ingest --url 'http://akosha-shard-{shard}.akosha-shard:8682' --synthetic 10000",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "synthetic", Usage: "generate and post N synthetic conversations"},
			&cli.IntFlag{Name: "days", Value: 1, Usage: "spread synthetic timestamps over the last D days"},
			&cli.Int64Flag{Name: "seed", Usage: "seed of the synthetic generator (default: current time, so runs do not collide)"},
			&cli.IntFlag{Name: "batch", Value: 1000, Usage: "conversations per request"},
			&cli.IntFlag{Name: "concurrency", Value: 2, Usage: "requests in flight"},
			&cli.StringFlag{Name: "url", Usage: "worker API base URL (default: from api.addr, e.g. http://127.0.0.1:8682); {shard} in it, or one URL per shard comma-separated, routes by system_id over shard.count shards"},
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
			r, err := newRouter(url, newCredential(cfg), cfg.Shard.Count)
			if err != nil {
				return err
			}
			out := c.App.Writer
			if cfg.Shard.Count > 1 && len(r.shards) == 1 {
				fmt.Fprintf(c.App.ErrWriter, "warning: shard.count is %d but --url names one worker: it refuses other shards' conversations (421); give --url with {shard} in it, or one URL per shard\n", cfg.Shard.Count)
			}
			if n := c.Int("synthetic"); n > 0 {
				seed := c.Int64("seed")
				if !c.IsSet("seed") {
					seed = time.Now().UnixNano()
				}
				return postSynthetic(c.Context, r, out, seed, n, c.Int("days"), c.Int("batch"), c.Int("concurrency"))
			}
			if c.NArg() == 0 {
				return fmt.Errorf("ingest: give --synthetic N or one or more files")
			}
			for _, f := range c.Args().Slice() {
				if err := postFile(c.Context, r, out, f); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

type apiClient struct {
	base string
	cred *credential
	http *http.Client
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
		if err := c.cred.authorize(req); err != nil {
			return res, err
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

// router sends each conversation to its shard's worker: one client per shard when the
// URL has {shard} in it, else one client for every conversation (a single shard, or a
// worker that refuses the others' with 421).
type router struct {
	shards []*apiClient
}

// shardPlaceholder in --url is replaced by the shard number.
const shardPlaceholder = "{shard}"

func newRouter(url string, cred *credential, count int) (*router, error) {
	hc := &http.Client{Timeout: 5 * time.Minute}
	r := &router{}
	switch {
	case strings.Contains(url, ","):
		urls := strings.Split(url, ",")
		if len(urls) != count {
			return nil, fmt.Errorf("--url: %d URLs for shard.count (AKOSHA_SHARDS) %d shards: give one per shard, shard 0 first", len(urls), count)
		}
		for _, u := range urls {
			r.shards = append(r.shards, &apiClient{base: strings.TrimRight(strings.TrimSpace(u), "/"), cred: cred, http: hc})
		}
	case strings.Contains(url, shardPlaceholder):
		if count < 1 {
			return nil, fmt.Errorf("--url %s: shard.count (AKOSHA_SHARDS) %d: want at least 1", url, count)
		}
		for s := range count {
			r.shards = append(r.shards, &apiClient{base: strings.TrimRight(strings.ReplaceAll(url, shardPlaceholder, strconv.Itoa(s)), "/"), cred: cred, http: hc})
		}
	default:
		r.shards = []*apiClient{{base: strings.TrimRight(url, "/"), cred: cred, http: hc}}
	}
	return r, nil
}

// split groups cs by the client they go to, in order; groups[i] goes to r.shards[i].
func (r *router) split(cs []engine.Conversation) [][]engine.Conversation {
	groups := make([][]engine.Conversation, len(r.shards))
	for _, c := range cs {
		s := shardmap.Of(c.SystemID, len(r.shards))
		groups[s] = append(groups[s], c)
	}
	return groups
}

// shardBody is one request: a batch for one shard.
type shardBody struct {
	shard int
	body  []byte
}

// bodies encodes cs as one NDJSON body per shard that gets any of them, in shard order.
func (r *router) bodies(cs []engine.Conversation) ([]shardBody, error) {
	var out []shardBody
	for s, group := range r.split(cs) {
		if len(group) == 0 {
			continue
		}
		var buf bytes.Buffer
		if err := ingest.EncodeNDJSON(&buf, group); err != nil {
			return nil, err
		}
		out = append(out, shardBody{s, buf.Bytes()})
	}
	return out, nil
}

func postSynthetic(ctx context.Context, r *router, out io.Writer, seed int64, n, days, batch, concurrency int) error {
	if batch <= 0 || concurrency <= 0 {
		return fmt.Errorf("ingest: --batch and --concurrency must be positive")
	}
	now := time.Now().UTC()
	all := ingest.Synthetic(seed, n, days, now)
	var encodeErr error // set before bodies closes
	bodies := make(chan shardBody, concurrency)
	go func() {
		defer close(bodies)
		for i := 0; i < len(all); i += batch {
			bs, err := r.bodies(all[i:min(i+batch, len(all))])
			if err != nil {
				encodeErr = err
				return
			}
			for _, b := range bs {
				select {
				case bodies <- b:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	var (
		inserted, dups atomic.Int64
		wg             sync.WaitGroup
		errOnce        sync.Once
		firstErr       error
		start          = time.Now()
		perShard       = make([]atomic.Int64, len(r.shards))
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range bodies {
				res, err := r.shards[b.shard].post(ctx, "application/x-ndjson", b.body)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				inserted.Add(int64(res.Inserted))
				dups.Add(int64(res.Duplicates))
				perShard[b.shard].Add(int64(res.Inserted))
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if encodeErr != nil {
		return encodeErr
	}
	el := time.Since(start)
	fmt.Fprintf(out, "ingested %d conversations (%d duplicates) in %s: %.0f conversations/s (seed %d)\n",
		inserted.Load(), dups.Load(), el.Round(time.Millisecond), float64(n)/el.Seconds(), seed)
	if len(r.shards) > 1 {
		for s := range perShard {
			fmt.Fprintf(out, "  shard %d (%s): inserted %d\n", s, r.shards[s].base, perShard[s].Load())
		}
	}
	return nil
}

// postFile posts path as one batch, or with several shards one batch per shard. The file
// is decoded and checked here first, so a bad record stops the whole file before any
// shard has taken part of it; a shard's refusal after others took theirs leaves those in,
// and running the command again is safe (ingest is idempotent).
func postFile(ctx context.Context, r *router, out io.Writer, path string) error {
	body, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ct := "application/x-ndjson"
	if strings.HasSuffix(path, ".json") {
		ct = "application/json"
	}
	if len(r.shards) == 1 {
		res, err := r.shards[0].post(ctx, ct, body)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(out, "%s: inserted %d, duplicates %d, txid %d\n", path, res.Inserted, res.Duplicates, res.TxID)
		return nil
	}
	// The workers enforce their own batch limit (api.max_batch); here only the records.
	cs, err := ingest.Decode(bytes.NewReader(body), ct, ingest.Limits{MaxRecords: 1 << 30})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	bs, err := r.bodies(cs)
	if err != nil {
		return err
	}
	for _, b := range bs {
		res, err := r.shards[b.shard].post(ctx, "application/x-ndjson", b.body)
		if err != nil {
			return fmt.Errorf("%s: shard %d: %w", path, b.shard, err)
		}
		fmt.Fprintf(out, "%s: shard %d: inserted %d, duplicates %d, txid %d\n", path, b.shard, res.Inserted, res.Duplicates, res.TxID)
	}
	return nil
}
