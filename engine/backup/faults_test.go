package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/akosha/akosha/engine"
	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/engine/objstore/s3"
	"github.com/akosha/akosha/internal/reliability"
	"github.com/akosha/akosha/internal/s3test"
)

// s3Store returns a store on a new bucket of the test server, reached through a
// fault-injecting proxy, and the server's bucket directory (to look behind the store).
func s3Store(t *testing.T) (*s3.Store, *s3test.Proxy, string) {
	t.Helper()
	srv := s3test.Shared(t)
	bucket, err := srv.NewBucket(context.Background(), "backup")
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := s3test.NewProxy(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	st, err := s3.New(context.Background(), s3.Config{
		Bucket: bucket, Prefix: "prod", Endpoint: proxy.URL, PathStyle: true, Region: s3test.Region, MaxAttempts: 3,
		PartSize:    5 << 20,
		Credentials: credentials.NewStaticCredentialsProvider(s3test.AccessKey, s3test.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, proxy, filepath.Join(srv.Dir, bucket)
}

// manifests counts the manifest.json objects in dir, read straight from the server's disk.
func manifests(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == ManifestName {
			n++
		}
		return nil
	})
	return n
}

// TestBackupOnS3Faults backs up to a real S3 server (versitygw) through a proxy that
// fails requests: transient 500s and dropped connections are retried and the backup
// completes and verifies; an S3 that keeps answering 500, or is too slow, fails the backup
// clearly with no manifest written.
func TestBackupOnS3Faults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts versitygw")
	}
	ctx := context.Background()
	e, dir := openEngine(t)
	ingest(t, e, 300)
	st, proxy, bucketDir := s3Store(t)

	m, err := Run(ctx, e, Options{Store: st, ScratchDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, st, m.ID, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bucketDir, "prod", m.Prefix, ManifestName)); err != nil {
		t.Fatalf("manifest not under the prefix: %v", err)
	}

	// Transient faults are retried.
	var rows []reliability.Row
	proxy.Fail(2)
	t0 := time.Now()
	m2, err := Run(ctx, e, Options{Store: st, ScratchDir: dir})
	if err != nil || proxy.FailuresLeft() != 0 {
		t.Fatalf("backup with two 500s: %v (%d faults not used)", err, proxy.FailuresLeft())
	}
	rows = append(rows, reliability.Row{Fault: "S3 answers 500 to two requests of a backup", Happened: "retried by the S3 client; the backup completed",
		Lost: "0", Recover: time.Since(t0).Round(time.Millisecond).String() + " (whole backup)"})
	proxy.Drop(1)
	t0 = time.Now()
	if _, err := Verify(ctx, st, m2.ID, t.TempDir()); err != nil {
		t.Fatalf("verify with a dropped connection: %v", err)
	}
	rows = append(rows, reliability.Row{Fault: "S3 drops the connection of a verification's download", Happened: "retried; the verification passed",
		Lost: "0", Recover: time.Since(t0).Round(time.Millisecond).String() + " (whole verification)"})

	// A broken S3: retried, then a clear failure and no manifest.
	proxy.Fail(-1)
	before := proxy.Requests.Load()
	_, err = Run(ctx, e, Options{Store: st, ScratchDir: dir})
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("backup against an S3 answering 500: %v", err)
	}
	if n := proxy.Requests.Load() - before; n < 3 {
		t.Fatalf("%d requests: not retried", n)
	}
	proxy.Heal()
	if n := manifests(t, bucketDir); n != 2 {
		t.Fatalf("%d manifests after the failed backup, want 2", n)
	}
	rows = append(rows, reliability.Row{Fault: "S3 answers 500 to every request", Happened: "retried, then the backup failed naming the 500; no manifest, nothing listed as a backup",
		Lost: "0 (the live store is untouched)", Recover: "the next backup after S3 heals"})

	// A slow S3 and a deadline: a clear failure, no manifest. (The file uploads cannot
	// finish in time. A manifest PUT whose response alone is lost may still land; that is
	// harmless, as the manifest is only sent once every file is stored.)
	proxy.Delay(3 * time.Second)
	dctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	_, err = Run(dctx, e, Options{Store: st, ScratchDir: dir})
	cancel()
	proxy.Heal()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("backup against a slow S3 past its deadline: %v", err)
	}
	if list, err := List(ctx, st); err != nil || len(list) != 2 {
		t.Fatalf("after the failures %d backups are listed (%v), want 2", len(list), err)
	}
	rows = append(rows, reliability.Row{Fault: "S3 answers every request 3 s late, past the backup's deadline", Happened: "the backup failed with the deadline; nothing listed",
		Lost: "0", Recover: "the next backup"})

	// An unreachable S3 (nothing listens any more): a clear failure, no manifest.
	proxy.Close()
	_, err = Run(ctx, e, Options{Store: st, ScratchDir: dir})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("backup against an unreachable S3: %v", err)
	}
	if n := manifests(t, bucketDir); n != 2 {
		t.Fatalf("%d manifests after the failed backup, want 2", n)
	}
	rows = append(rows, reliability.Row{Fault: "S3 unreachable (connection refused)", Happened: "the backup failed naming it; nothing listed",
		Lost: "0", Recover: "the next backup"})
	direct, err := s3.New(ctx, s3.Config{
		Bucket: filepath.Base(bucketDir), Prefix: "prod", Endpoint: s3test.Shared(t).Endpoint, PathStyle: true, Region: s3test.Region,
		Credentials: credentials.NewStaticCredentialsProvider(s3test.AccessKey, s3test.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	st = direct

	// A bit flipped on the server's disk fails verification, naming the object.
	f := m.Files[0]
	p := filepath.Join(bucketDir, "prod", filepath.FromSlash(f.Key))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x04
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, st, m.ID, t.TempDir()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), f.Key) {
		t.Fatalf("verify of a flipped object: %v", err)
	}
	rows = append(rows, reliability.Row{Fault: "one bit flipped in a stored backup object", Happened: "verification failed naming the object (ErrCorrupt); a restore picks an older good backup (latest-good)",
		Lost: "0 (the live store is untouched)", Recover: "-"})
	reliability.Record(t, "Object store faults during backups (`engine/backup` `TestBackupOnS3Faults`, versitygw behind a fault proxy)", rows)
}

// fullStore is a file store whose disk fills after limit bytes: Put fails with ENOSPC
// like the real file store would. A fake, because filling a real disk is not something
// a test may do to the machine.
type fullStore struct {
	objstore.Store
	limit int64
}

func (s *fullStore) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	return s.Store.Put(ctx, key, &enospcReader{r: r, left: s.limit}, opts)
}

type enospcReader struct {
	r    io.Reader
	left int64
}

func (e *enospcReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, &os.PathError{Op: "write", Path: "store", Err: syscall.ENOSPC}
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	return n, err
}

// A store that fills during the upload: the backup fails clearly, nothing is listed.
func TestBackupStoreFull(t *testing.T) {
	ctx := context.Background()
	e, dir := openEngine(t)
	ingest(t, e, 300)
	fs, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	st := &fullStore{Store: fs, limit: 4096}
	_, err = Run(ctx, e, Options{Store: st, ScratchDir: dir})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("backup into a full store: %v, want ENOSPC", err)
	}
	if list, err := List(ctx, fs); err != nil || len(list) != 0 {
		t.Fatalf("listed after a failed backup: %+v %v", list, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "backup-*")); len(matches) != 0 {
		t.Fatalf("snapshot left behind: %v", matches)
	}
}

// childEnv makes the test binary run as the scratch-full child of TestVerifyScratchFull.
const childEnv = "AKOSHA_BACKUP_TEST_CHILD"

// TestVerifyScratchFull verifies a backup in a process whose files may not grow past
// 64 KiB (RLIMIT_FSIZE: the kernel fails the write with EFBIG, as a full scratch disk
// fails it with ENOSPC). Verify fails naming the scratch, leaves no scratch files and does
// not mark the backup verified.
func TestVerifyScratchFull(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		verifyChild(t)
		return
	}
	ctx := context.Background()
	e, dir := openEngine(t)
	ingest(t, e, 300)
	root := filepath.Join(t.TempDir(), "store")
	st, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Run(ctx, e, Options{Store: st, ScratchDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestVerifyScratchFull$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{root, m.ID, scratch}, "|"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "decompress into scratch") || !strings.Contains(string(out), "file too large") {
		t.Fatalf("child output does not show a scratch failure:\n%s", out)
	}
	if entries, _ := os.ReadDir(scratch); len(entries) != 0 {
		t.Fatalf("scratch not cleaned: %v", entries)
	}
	if _, err := st.Stat(ctx, path.Join(m.Prefix, VerifiedName)); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("backup marked verified after a failed verify: %v", err)
	}
	// With room, it verifies.
	if _, err := Verify(ctx, st, m.ID, scratch); err != nil {
		t.Fatal(err)
	}
}

func verifyChild(t *testing.T) {
	args := strings.Split(os.Getenv(childEnv), "|")
	st, err := file.New(args[0])
	if err != nil {
		t.Fatal(err)
	}
	lim := syscall.Rlimit{Cur: 64 << 10, Max: 64 << 10}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(context.Background(), st, args[1], args[2])
	if err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify with a full scratch: %v, want a scratch error (not corruption)", err)
	}
	fmt.Println("verify failed:", err)
}

// A backup whose scratch directory (where the snapshot is taken) is on a full disk: a
// size-limited tmpfs the test mounts. The backup fails with ENOSPC, nothing is listed,
// the scratch is left empty, the live engine goes on taking writes, and once the disk has
// room the next backup succeeds.
func TestBackupScratchFull(t *testing.T) {
	scratch := t.TempDir()
	reliability.MountTmpfs(t, scratch, "size=1m", "the full-scratch case")
	ctx := context.Background()
	e, _ := openEngine(t)
	ingest(t, e, 2000)
	fs, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, e, Options{Store: fs, ScratchDir: scratch})
	if err == nil || !engine.IsDiskFull(err) {
		t.Fatalf("backup with a full scratch: %v, want ENOSPC", err)
	}
	if list, err := List(ctx, fs); err != nil || len(list) != 0 {
		t.Fatalf("listed after a failed backup: %+v %v", list, err)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Fatalf("the scratch holds %d entries after the failure", len(left))
	}
	if err := e.Healthy(); err != nil {
		t.Fatalf("the live engine after a failed backup: %v", err)
	}
	ingest2 := engine.Conversation{SystemID: "s", ConversationID: "after", Content: "x", Embedding: make([]float32, engine.EmbeddingDim), Timestamp: time.Now()}
	if _, err := e.Ingest(ctx, []engine.Conversation{ingest2}); err != nil {
		t.Fatalf("ingest after the failed backup: %v", err)
	}
	reliability.Remount(t, scratch, "remount,size=256m")
	m, err := Run(ctx, e, Options{Store: fs, ScratchDir: scratch})
	if err != nil {
		t.Fatalf("backup once the scratch has room: %v", err)
	}
	if _, err := Verify(ctx, fs, m.ID, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	reliability.Record(t, "Backup scratch disk full (`engine/backup` `TestBackupScratchFull`, a 1 MiB tmpfs)", []reliability.Row{{
		Fault:    "the scratch disk of a backup's snapshot is full",
		Happened: "the backup failed with ENOSPC, nothing listed, the scratch left empty; writes went on; the next backup with room succeeded and verified",
		Lost:     "0", Recover: "the next backup",
	}})
}
