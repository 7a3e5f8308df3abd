package starter

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/server/temporaltest"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/internal/benchdata/enginebench"
	"github.com/akosha/akosha/worker"
	"github.com/akosha/akosha/workflows"
)

// BenchmarkDR1M runs each disaster-recovery runbook on the 1,000,000-conversation shard of
// the backup benchmark (446 MB warm.db, enginebench.WarmDataset) with a real Temporal
// server (temporaltest) and worker: per iteration, untimed, a fresh copy of the store, a
// worker, a verified backup to a file:// store, then the damage:
//
//	disk-failure:        the worker stops, the warm directory is deleted, a worker starts
//	corruption:          the worker stops, 256 KiB in the middle of warm.db are overwritten
//	accidental-deletion: 1,000 conversations deleted by id
//
// and, timed, the runbook (auto-approved). The metrics are the report's RTO (workflow start
// to writes resumed) and its steps. `make bench-dr` (docs/BENCHMARKS.md).
func BenchmarkDR1M(b *testing.B) {
	src := enginebench.WarmDataset(b, 1_000_000)
	ts := temporaltest.NewServer() // WithT takes a *testing.T only
	b.Cleanup(ts.Stop)
	c := ts.GetDefaultClient()
	ctx := context.Background()
	for _, scenario := range []string{"disk-failure", "corruption", "accidental-deletion"} {
		b.Run(scenario, func(b *testing.B) {
			var rto float64
			steps := map[string]int64{}
			n := 0
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				if out, err := exec.Command("cp", "-r", src+"/.", dir).CombinedOutput(); err != nil {
					b.Fatalf("copy the dataset: %v %s", err, out)
				}
				cfg := testConfig(b)
				cfg.DataDir = dir
				cfg.Storage.Hot.Path, cfg.Storage.Warm.Path, cfg.Storage.Hot.WALPath = filepath.Join(dir, "hot"), filepath.Join(dir, "warm"), filepath.Join(dir, "wal")
				cfg.Backup.Path = filepath.Join(dir, "backups")
				w, err := worker.Start(ctx, cfg, worker.Options{Temporal: c, GracePeriod: 5 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				var out bytes.Buffer
				var bk workflows.BackupResult
				if err := startWorkflow(ctx, c, &out, fmt.Sprintf("bench-backup-%s-%d", scenario, n), workflows.BackupWorkflowName, workflows.BackupInput{}, true, &bk); err != nil {
					b.Fatal(err)
				}
				in := workflows.DRInput{Scenario: scenario, AutoApprove: true}
				warmFile := filepath.Join(cfg.Storage.Warm.Path, engine.WarmFile)
				switch scenario {
				case "disk-failure", "corruption":
					if err := w.Stop(ctx); err != nil {
						b.Fatal(err)
					}
					if scenario == "disk-failure" {
						err = os.RemoveAll(cfg.Storage.Warm.Path)
					} else {
						err = overwriteMiddle(warmFile, 256<<10)
					}
					if err != nil {
						b.Fatal(err)
					}
					if w, err = worker.Start(ctx, cfg, worker.Options{Temporal: c, GracePeriod: 5 * time.Second}); err != nil {
						b.Fatal(err)
					}
				case "accidental-deletion":
					in.From = time.Now().Format(time.RFC3339Nano)
					ids := make([]string, 1000)
					for i := range ids {
						ids[i] = fmt.Sprintf("conv-%08d", i*997)
					}
					if r, err := w.Engine().Delete(ctx, engine.DeleteRequest{IDs: ids}); err != nil || r.Deleted != 1000 {
						b.Fatalf("delete %+v %v", r, err)
					}
				}
				var rep workflows.DRReport
				id := fmt.Sprintf("bench-dr-%s-%d", scenario, n)
				b.StartTimer()
				err = startWorkflow(ctx, c, &out, id, workflows.DisasterRecoveryWorkflowName, in, true, &rep)
				b.StopTimer()
				if err != nil {
					b.Fatalf("%v\n%s", err, out.String())
				}
				if rep.Outcome != "recovered" {
					b.Fatalf("report %+v", rep)
				}
				if s, err := w.Engine().Stats(ctx); err != nil || s.WarmRows != 1_000_000 {
					b.Fatalf("after %s: %+v %v", scenario, s, err)
				}
				rto += rep.RTOSeconds
				for _, s := range rep.Steps {
					steps[s.Name] += s.DurationMS
				}
				b.Logf("%s: RTO %.2f s, steps %v", scenario, rep.RTOSeconds, stepList(rep.Steps))
				n++
				w.Stop(ctx)
				b.StartTimer()
			}
			b.ReportMetric(rto/float64(n), "rto-s")
			for name, ms := range steps {
				b.ReportMetric(float64(ms)/float64(n), name+"-ms")
			}
		})
	}
}

func stepList(steps []workflows.DRStep) string {
	var b bytes.Buffer
	for _, s := range steps {
		fmt.Fprintf(&b, "%s=%dms ", s.Name, s.DurationMS)
	}
	return b.String()
}

// overwriteMiddle overwrites n bytes in the middle of the file f with a pattern.
func overwriteMiddle(f string, n int) error {
	fh, err := os.OpenFile(f, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return err
	}
	_, err = fh.WriteAt(bytes.Repeat([]byte{0xA5}, n), fi.Size()/2)
	return err
}
