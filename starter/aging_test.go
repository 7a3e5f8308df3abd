package starter

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/activities"
	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/internal/s3test"
	"github.com/akosha/akosha/internal/stores"
	"github.com/akosha/akosha/worker"
	"github.com/akosha/akosha/worker/ingest"
	"github.com/akosha/akosha/workflows"
)

// TestAgingWorkflowEndToEnd runs AgingWorkflow on a real Temporal server and a real
// worker whose cold tier is a real S3 server (versitygw), with writes continuing during
// the run: conversations older than 7 days reach warm, older than the target age cold
// (Parquet objects that plain DuckDB reads), the verify proves every system's count
// conserved, and a GET of a cold conversation answers from the object store.
func TestAgingWorkflowEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server and versitygw")
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	srv := s3test.Shared(t)
	bucket, err := srv.NewBucket(context.Background(), "cold")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	cfg := testConfig(t)
	cold := &cfg.Storage.Cold
	cold.Backend, cold.Bucket, cold.Prefix, cold.Endpoint, cold.Region, cold.PathStyle = "s3", bucket, "conversations/", srv.Endpoint, s3test.Region, true

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	w, err := worker.Start(ctx, cfg, worker.Options{Temporal: c, GracePeriod: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	now := time.Now()
	cs := ingest.Synthetic(5, 1500, 150, now) // spread over the last 150 days
	if _, err := w.Engine().Ingest(ctx, cs); err != nil {
		t.Fatal(err)
	}
	var wantHot, wantWarm, wantCold int
	var coldID string
	for _, cv := range cs {
		switch age := now.Sub(cv.Timestamp); {
		case age < 7*24*time.Hour-time.Minute:
			wantHot++
		case age < 60*24*time.Hour-time.Minute:
			wantWarm++
		case age > 60*24*time.Hour+time.Minute:
			wantCold++
			coldID = cv.ConversationID
		}
	}

	// Writes of young conversations go on during the run.
	stopWriting := keepWriting(ctx, t, w.Engine(), 1000, 10, 20*time.Millisecond)
	var out bytes.Buffer
	var res workflows.AgingResult
	in := workflows.AgingInput{AgeParams: activities.AgeParams{TargetAgeDays: 60, BatchSize: 100, Verify: true}}
	if err := startWorkflow(ctx, c, &out, "test-aging-e2e", workflows.AgingWorkflowName, in, true, &res); err != nil {
		t.Fatal(err)
	}
	extra := stopWriting()
	if res.HotToWarm.Moved < wantWarm+wantCold-2 || res.WarmToCold.Moved < wantCold-2 || res.WarmToCold.Moved > wantCold+2 ||
		res.WarmToCold.Objects == 0 || res.Verify == nil || !res.Verify.Conserved {
		t.Fatalf("result %+v (verify %+v); want about %d to warm and %d to cold", res, res.Verify, wantWarm+wantCold, wantCold)
	}
	counts, err := w.Engine().TierCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var total engine.TierCount
	for _, n := range counts {
		total.Hot, total.Warm, total.Cold = total.Hot+n.Hot, total.Warm+n.Warm, total.Cold+n.Cold
	}
	if total.Total() != int64(len(cs)+extra) || total.Cold != int64(res.WarmToCold.Moved) {
		t.Fatalf("tiers %+v after %d + %d writes, %d moved to cold", total, len(cs), extra, res.WarmToCold.Moved)
	}

	// The cold store holds exactly the cataloged objects, and they are plain Parquet.
	store, err := stores.OpenColdStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := w.Engine().ColdObjects(ctx, "", time.Time{}, time.Time{})
	if err != nil || len(objs) != res.WarmToCold.Objects {
		t.Fatalf("catalog %d objects (%v), the run wrote %d", len(objs), err, res.WarmToCold.Objects)
	}
	var keys []string
	store.List(ctx, "", func(o objstore.ObjectInfo) error { keys = append(keys, o.Key); return nil })
	if len(keys) != len(objs) || !strings.HasPrefix(store.URL(), "s3://"+bucket+"/conversations") {
		t.Fatalf("store %s: %d objects, catalog %d", store.URL(), len(keys), len(objs))
	}
	rc, _, err := store.Get(ctx, objs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "x.parquet")
	f, _ := os.Create(local)
	io.Copy(f, rc)
	rc.Close()
	f.Close()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM read_parquet(?) WHERE system_id = ? AND octet_length(fingerprint) = 48`, local, objs[0].SystemID).Scan(&n); err != nil || n != objs[0].Rows {
		t.Fatalf("plain DuckDB reads %d rows of %s (%v), catalog %d", n, objs[0].Key, err, objs[0].Rows)
	}

	// GET over the HTTP API answers from the cold tier and says so.
	resp, err := http.Get("http://" + w.APIAddr() + "/v1/conversations/" + coldID)
	if err != nil {
		t.Fatal(err)
	}
	var got engine.Stored
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || got.Tier != "cold" || got.Cold == nil || got.Cold.UltraSummary == "" || got.ConversationID != coldID {
		t.Fatalf("GET cold conversation: %d %+v %v", resp.StatusCode, got, err)
	}

	// A dry run now finds nothing more to move; explain describes the three tiers.
	var dry workflows.AgingResult
	in = workflows.AgingInput{AgeParams: activities.AgeParams{TargetAgeDays: 60, DryRun: true}}
	if err := startWorkflow(ctx, c, io.Discard, "test-aging-e2e-dry", workflows.AgingWorkflowName, in, true, &dry); err != nil {
		t.Fatal(err)
	}
	if dry.Plan == nil || dry.Plan.WarmToColdRows != 0 || dry.Plan.After.Cold != total.Cold || len(dry.Tiers) != 3 || dry.Tiers[2].Objects != int64(len(objs)) {
		t.Fatalf("dry run after aging: %+v", dry)
	}
	// Bad input fails the workflow with an error naming the field.
	in = workflows.AgingInput{AgeParams: activities.AgeParams{TargetAgeDays: 120}}
	err = startWorkflow(ctx, c, io.Discard, "test-aging-e2e-bad", workflows.AgingWorkflowName, in, true, &dry)
	if err == nil || !strings.Contains(err.Error(), "target_age_days 120") {
		t.Fatalf("target age above the warm retention: %v", err)
	}
}
