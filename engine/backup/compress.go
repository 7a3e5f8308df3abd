package backup

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// chunkSize is how much of a file each compression job takes. Every chunk becomes its
// own zstd frame (or gzip member); a file is their concatenation, which zstd and gzip
// readers (and the zstd and gunzip tools) decompress as one stream. A variable so tests
// can make files of many chunks.
var chunkSize = 4 << 20

// zstdEncoder compresses chunks; EncodeAll is safe for concurrent use.
var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithZeroFrames(true))
	if err != nil {
		panic(err) // only bad options fail
	}
	return enc
})

type chunkJob struct {
	in, out []byte
	err     error
	done    chan struct{}
}

// compressParallel reads r in chunks, compresses them on every core, and writes the
// compressed chunks to w in order. It holds at most 2×GOMAXPROCS chunks in memory.
// r is read, and w written, from one goroutine each, so hashes fed by them see the
// bytes in order.
func compressParallel(ctx context.Context, r io.Reader, w io.Writer, compression string) error {
	workers := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *chunkJob)
	ordered := make(chan *chunkJob, 2*workers)
	var readErr error
	go func() { // reader
		defer close(work)
		defer close(ordered)
		for {
			buf := make([]byte, chunkSize)
			n, err := io.ReadFull(r, buf)
			if n > 0 {
				j := &chunkJob{in: buf[:n], done: make(chan struct{})}
				select {
				case ordered <- j:
				case <-ctx.Done():
					return
				}
				select {
				case work <- j:
				case <-ctx.Done():
					return
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil {
				readErr = err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // unblock the reader, then let the workers drain
	for range workers {
		wg.Go(func() {
			for j := range work {
				j.out, j.err = compressChunk(j.in, compression)
				j.in = nil
				close(j.done)
			}
		})
	}
	chunks := 0
	for j := range ordered {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.err != nil {
			return j.err
		}
		if _, err := w.Write(j.out); err != nil {
			return err
		}
		j.out = nil
		chunks++
	}
	// ordered is closed after the reader's last send, so readErr is set by now.
	if readErr != nil {
		return readErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if chunks == 0 { // an empty file still makes a valid (empty) stream
		out, err := compressChunk(nil, compression)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	return nil
}

// compressChunk compresses one chunk into a complete zstd frame or gzip member.
func compressChunk(in []byte, compression string) ([]byte, error) {
	if compression == Gzip {
		var b bytes.Buffer
		zw, err := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(in); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return zstdEncoder().EncodeAll(in, make([]byte, 0, len(in)/2)), nil
}
