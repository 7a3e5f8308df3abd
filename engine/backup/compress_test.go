package backup

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/akosha/akosha/engine/objstore/file"
)

// withChunkSize runs the test with small compression chunks, so files span many.
func withChunkSize(t *testing.T, n int) {
	old := chunkSize
	chunkSize = n
	t.Cleanup(func() { chunkSize = old })
}

func TestCompressParallelRoundTrip(t *testing.T) {
	withChunkSize(t, 1000)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 999, 1000, 1001, 54321} {
		in := make([]byte, size)
		for i := range in {
			in[i] = byte(rng.IntN(16)) // compressible, not trivially
		}
		for _, c := range []string{Zstd, Gzip} {
			var out bytes.Buffer
			if err := compressParallel(context.Background(), bytes.NewReader(in), &out, c); err != nil {
				t.Fatal(err)
			}
			var r io.Reader
			if c == Gzip {
				zr, err := gzip.NewReader(bytes.NewReader(out.Bytes()))
				if err != nil {
					t.Fatalf("%s %d: %v", c, size, err)
				}
				r = zr
			} else {
				zr, err := zstd.NewReader(bytes.NewReader(out.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				r = zr
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, in) {
				t.Fatalf("%s %d bytes: round trip gave %d bytes, %v", c, size, len(got), err)
			}
			// The command-line tools read the concatenated frames too.
			tool := map[string]string{Zstd: "zstd", Gzip: "gzip"}[c]
			if _, err := exec.LookPath(tool); err == nil && size > 0 {
				cmd := exec.Command(tool, "-dc")
				cmd.Stdin = bytes.NewReader(out.Bytes())
				got, err := cmd.Output()
				if err != nil || !bytes.Equal(got, in) {
					t.Fatalf("%s -dc of %d bytes: %d bytes, %v", tool, size, len(got), err)
				}
			}
		}
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk read error")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("store write error") }

// Errors on either side end the pipeline (no goroutine left blocked) and are returned.
func TestCompressParallelErrors(t *testing.T) {
	withChunkSize(t, 100)
	if err := compressParallel(context.Background(), &failingReader{n: 1050}, io.Discard, Zstd); err == nil || err.Error() != "disk read error" {
		t.Fatalf("read error: %v", err)
	}
	if err := compressParallel(context.Background(), bytes.NewReader(make([]byte, 100000)), failingWriter{}, Zstd); err == nil || err.Error() != "store write error" {
		t.Fatalf("write error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := compressParallel(ctx, bytes.NewReader(make([]byte, 100000)), io.Discard, Gzip); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// A backup whose files span many compression chunks verifies.
func TestBackupManyChunks(t *testing.T) {
	withChunkSize(t, 64<<10)
	ctx := context.Background()
	e, dir := openEngine(t)
	ingest(t, e, 500)
	st, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{Zstd, Gzip} {
		m, err := Run(ctx, e, Options{Store: st, ScratchDir: dir, Compression: c})
		if err != nil {
			t.Fatal(err)
		}
		if m.Files[0].Size < 4*int64(chunkSize) {
			t.Fatalf("hot.db is %d bytes: not several chunks", m.Files[0].Size)
		}
		if _, err := Verify(ctx, st, m.ID, t.TempDir()); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
}
