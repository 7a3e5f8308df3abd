package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "AKOSHA_TEST_CRASH_CHILD_DIR"

// TestKill9RecoversAcknowledgedWrites runs an ingesting child process, kills it with
// SIGKILL mid-stream, reopens the engine and checks every write the child saw
// acknowledged is present.
func TestKill9RecoversAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(60 * time.Second)
	for sc.Scan() && acked < 30 && time.Now().Before(deadline) {
		if n, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked, _ = strconv.Atoi(n)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Keep reading: acknowledgements printed before the kill landed count too.
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked, _ = strconv.Atoi(n)
		}
	}
	cmd.Wait()
	if acked < 30 {
		t.Fatalf("child acknowledged only %d batches before the deadline", acked)
	}
	e := mustOpen(t, testOptions(dir))
	defer e.Close()
	ctx := context.Background()
	for b := 0; b < acked; b++ {
		for _, i := range []int{b * 100, b*100 + 99} {
			if _, err := e.Get(ctx, fmt.Sprintf("k-%d", i)); err != nil {
				t.Fatalf("acknowledged conversation k-%d (batch %d of %d) lost: %v", i, b+1, acked, err)
			}
		}
	}
	s := mustStats(t, e)
	if s.HotRows < int64(acked*100) {
		t.Fatalf("hot rows %d < %d acknowledged", s.HotRows, acked*100)
	}
	t.Logf("child acknowledged %d batches; recovered %d rows, replayed %d WAL records, torn tail: %v", acked, s.HotRows, e.Recovery().Replayed, e.Recovery().Truncated != nil)
}

// TestCrashChild is the child of TestKill9RecoversAcknowledgedWrites; it does nothing
// unless started by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestKill9RecoversAcknowledgedWrites")
	}
	e := mustOpen(t, testOptions(dir))
	for b := 0; b < 100000; b++ {
		if _, err := e.Ingest(context.Background(), convs("k", b*100, 100)); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ack %d\n", b+1)
	}
}
