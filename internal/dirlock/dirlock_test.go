package dirlock

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, "LOCK")
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description: a second open, even in this process, contends.
	if _, err := Acquire(dir, "LOCK"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Fatalf("second acquire: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir, "LOCK")
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	l2.Release()
	l2.Release()
}

// TestReleasedOnKill: a lock held by a killed process does not go stale.
func TestReleasedOnKill(t *testing.T) {
	dir := t.TempDir()
	// The child is the test binary itself holding the lock (see TestHoldLock).
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldLock$")
	cmd.Env = append(os.Environ(), "DIRLOCK_HOLD="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ { // wait until the child holds it
		l, err := Acquire(dir, "LOCK")
		if err != nil {
			break
		}
		l.Release()
		if i == 99 {
			t.Fatal("child never took the lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(dir, "LOCK")
	if err != nil {
		t.Fatalf("lock stayed held after the holder was killed: %v", err)
	}
	l.Release()
}

// TestHoldLock is the child of TestReleasedOnKill: it takes the lock and waits to be killed.
func TestHoldLock(t *testing.T) {
	dir := os.Getenv("DIRLOCK_HOLD")
	if dir == "" {
		t.Skip("only runs as the child of TestReleasedOnKill")
	}
	if _, err := Acquire(dir, "LOCK"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second)
}
