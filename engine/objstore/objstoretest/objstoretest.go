// Package objstoretest is the contract suite every objstore.Store backend must pass:
// call Run from the backend's tests with a constructor for fresh, empty stores.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/akosha/akosha/engine/objstore"
)

// InvalidKeys are keys that every method of every store must refuse with
// objstore.ErrInvalidKey.
var InvalidKeys = []string{"", "/x", "x/", "a//b", "../x", "a/../b", "./x", "a\\b", "x\x00", "a\nb", "\xff"}

// transformed is set by RunTransformed for the duration of its run.
var transformed struct {
	on    bool
	extra []string
}

// sizeIs reports whether a reported size fits want bytes written: equal, or for a
// transforming store (RunTransformed), which only adds (an encryption's header and tags),
// at least want.
func sizeIs(got, want int64) bool { return got == want || transformed.on && got > want }

// metaIs reports whether reported metadata equals the metadata put, ignoring the keys a
// transforming store adds.
func metaIs(got, want map[string]string) bool {
	got = maps.Clone(got)
	for _, k := range transformed.extra {
		delete(got, k)
	}
	return maps.Equal(got, want) // nil and empty are equal
}

// RunTransformed is Run for a store that changes what it stores (an encrypting wrapper):
// the bytes read back must be those written, but reported sizes are the stored ones, and
// it may add the metadata keys extra. Not to be run in parallel with Run.
func RunTransformed(t *testing.T, newStore func(t *testing.T) objstore.Store, extra ...string) {
	transformed.on, transformed.extra = true, extra
	defer func() { transformed.on, transformed.extra = false, nil }()
	Run(t, newStore)
}

// Run runs the contract of objstore.Store (see its doc comment) as subtests of t.
// newStore must return a fresh, empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"LargeStream", testLargeStream},
		{"Metadata", testMetadata},
		{"Replace", testReplace},
		{"NotFound", testNotFound},
		{"ListPrefix", testListPrefix},
		{"ListStops", testListStops},
		{"Delete", testDelete},
		{"InvalidKeys", testInvalidKeys},
		{"FailedPut", testFailedPut},
		{"CancelledPut", testCancelledPut},
		{"ConcurrentPuts", testConcurrentPuts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// MustPut stores b under key or fails the test.
func MustPut(t testing.TB, s objstore.Store, key string, b []byte) objstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(t.Context(), key, onlyReader{bytes.NewReader(b)}, objstore.PutOptions{})
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return info
}

// MustGet returns the bytes stored under key or fails the test.
func MustGet(t testing.TB, s objstore.Store, key string) []byte {
	t.Helper()
	rc, _, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

// Keys lists the keys under prefix or fails the test.
func Keys(t testing.TB, s objstore.Store, prefix string) []string {
	t.Helper()
	keys := []string{}
	if err := s.List(t.Context(), prefix, func(info objstore.ObjectInfo) error {
		keys = append(keys, info.Key)
		return nil
	}); err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return keys
}

func testRoundTrip(t *testing.T, s objstore.Store) {
	for _, tc := range []struct {
		key  string
		data []byte
	}{
		{"empty", []byte{}},
		{"small", []byte("hello, object")},
		{"deep/er/key.txt", []byte("nested")},
		{"sp ace/ü-ñ/.dot", []byte("unicode and dots")},
	} {
		info := MustPut(t, s, tc.key, tc.data)
		if got, want := info.Key, tc.key; got != want {
			t.Errorf("put %q: info.Key = %q", tc.key, got)
		}
		if got, want := info.Size, int64(len(tc.data)); !sizeIs(got, want) {
			t.Errorf("put %q: info.Size = %d, want %d", tc.key, got, want)
		}
		if got := MustGet(t, s, tc.key); !bytes.Equal(got, tc.data) {
			t.Errorf("get %q = %q, want %q", tc.key, got, tc.data)
		}
		st, err := s.Stat(t.Context(), tc.key)
		if err != nil {
			t.Fatalf("stat %q: %v", tc.key, err)
		}
		if st.Key != tc.key || !sizeIs(st.Size, int64(len(tc.data))) || st.ModTime.IsZero() {
			t.Errorf("stat %q = %+v", tc.key, st)
		}
	}
}

func testLargeStream(t *testing.T, s objstore.Store) {
	const size = 20 << 20
	src := io.LimitReader(rand.NewChaCha8([32]byte{1, 2, 3}), size)
	h := sha256.New()
	info, err := s.Put(t.Context(), "big/object.bin", io.TeeReader(src, h), objstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)
	if !sizeIs(info.Size, size) {
		t.Fatalf("put size = %d, want %d", info.Size, size)
	}
	rc, ginfo, err := s.Get(t.Context(), "big/object.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h.Reset()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || !sizeIs(ginfo.Size, size) || !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("read %d bytes (info %d), sha256 %x; want %d bytes, sha256 %x", n, ginfo.Size, h.Sum(nil), size, want)
	}
}

func testMetadata(t *testing.T, s objstore.Store) {
	md := map[string]string{"sha256": "9f86d081884c7d659a2feaa0c55ad015", "x-akosha-shard": "3"}
	if _, err := s.Put(t.Context(), "m/obj", onlyReader{bytes.NewReader([]byte("data"))},
		objstore.PutOptions{ContentType: "application/json", Metadata: md, Tags: map[string]string{"tier": "cold"}}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stat(t.Context(), "m/obj")
	if err != nil {
		t.Fatal(err)
	}
	if !metaIs(st.Metadata, md) {
		t.Errorf("stat metadata = %v, want %v", st.Metadata, md)
	}
	rc, info, err := s.Get(t.Context(), "m/obj")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if !metaIs(info.Metadata, md) || !sizeIs(info.Size, 4) {
		t.Errorf("get info = %+v, want metadata %v and size 4", info, md)
	}
}

func testReplace(t *testing.T, s objstore.Store) {
	if _, err := s.Put(t.Context(), "r/k", onlyReader{bytes.NewReader([]byte("first version, longer"))},
		objstore.PutOptions{Metadata: map[string]string{"v": "1"}}); err != nil {
		t.Fatal(err)
	}
	MustPut(t, s, "r/k", []byte("second"))
	if got := MustGet(t, s, "r/k"); string(got) != "second" {
		t.Fatalf("after replace get = %q", got)
	}
	st, err := s.Stat(t.Context(), "r/k")
	if err != nil {
		t.Fatal(err)
	}
	if !sizeIs(st.Size, 6) || !metaIs(st.Metadata, nil) {
		t.Fatalf("after replace stat = %+v, want size 6 and the old metadata gone", st)
	}
	if got := Keys(t, s, ""); !slices.Equal(got, []string{"r/k"}) {
		t.Fatalf("after replace list = %q", got)
	}
}

func testNotFound(t *testing.T, s objstore.Store) {
	MustPut(t, s, "exists/obj", []byte("x"))
	for _, key := range []string{"missing", "exists/missing", "exists", "exists/obj/child", "exists/ob"} {
		if _, err := s.Stat(t.Context(), key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("stat %q: err = %v, want ErrNotFound", key, err)
		}
		rc, _, err := s.Get(t.Context(), key)
		if !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("get %q: err = %v, want ErrNotFound", key, err)
		}
		if rc != nil {
			rc.Close()
		}
	}
}

func testListPrefix(t *testing.T, s objstore.Store) {
	keys := []string{"a/b/x", "a/b/y/z", "a/bc", "a/b-c", "a/b.c", "a-b", "a.b", "ab", "b/c", "b0"}
	for i, k := range keys {
		MustPut(t, s, k, bytes.Repeat([]byte{'x'}, i))
	}
	sorted := slices.Clone(keys)
	sort.Strings(sorted)
	filter := func(prefix string) []string {
		out := []string{}
		for _, k := range sorted {
			if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
				out = append(out, k)
			}
		}
		return out
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", sorted},
		{"a/b/", []string{"a/b/x", "a/b/y/z"}},
		{"a/b", []string{"a/b-c", "a/b.c", "a/b/x", "a/b/y/z", "a/bc"}},
		{"a", filter("a")},
		{"a/", filter("a/")},
		{"b", []string{"b/c", "b0"}},
		{"b/", []string{"b/c"}},
		{"a/b/y/z", []string{"a/b/y/z"}},
		{"zzz", []string{}},
		{"a/b/q/", []string{}},
	} {
		if got := Keys(t, s, tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("list %q = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	// The infos carry sizes and modification times.
	err := s.List(t.Context(), "", func(info objstore.ObjectInfo) error {
		i := slices.Index(keys, info.Key)
		if !sizeIs(info.Size, int64(i)) || info.ModTime.IsZero() {
			return fmt.Errorf("list info %+v, want size %d and a mod time", info, i)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func testListStops(t *testing.T, s objstore.Store) {
	for _, k := range []string{"l/1", "l/2", "l/3"} {
		MustPut(t, s, k, []byte(k))
	}
	stop := errors.New("stop here")
	var seen []string
	err := s.List(t.Context(), "l/", func(info objstore.ObjectInfo) error {
		seen = append(seen, info.Key)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("list err = %v, want the callback's error", err)
	}
	if !slices.Equal(seen, []string{"l/1", "l/2"}) {
		t.Fatalf("list called fn with %q after the error", seen)
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	MustPut(t, s, "d/e/obj", []byte("x"))
	MustPut(t, s, "d/keep", []byte("y"))
	for range 2 {
		if err := s.Delete(t.Context(), "d/e/obj"); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if err := s.Delete(t.Context(), "never/existed"); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
	if err := s.Delete(t.Context(), "d"); err != nil {
		t.Fatalf("delete of a key that is only a prefix: %v", err)
	}
	if _, err := s.Stat(t.Context(), "d/e/obj"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("stat after delete: err = %v, want ErrNotFound", err)
	}
	if got := Keys(t, s, ""); !slices.Equal(got, []string{"d/keep"}) {
		t.Fatalf("list after delete = %q", got)
	}
	// The key can be written again.
	MustPut(t, s, "d/e/obj", []byte("again"))
	if got := MustGet(t, s, "d/e/obj"); string(got) != "again" {
		t.Fatalf("get after re-put = %q", got)
	}
}

func testInvalidKeys(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	for _, key := range InvalidKeys {
		if _, err := s.Put(ctx, key, onlyReader{bytes.NewReader([]byte("x"))}, objstore.PutOptions{}); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("put %q: err = %v, want ErrInvalidKey", key, err)
		}
		rc, _, err := s.Get(ctx, key)
		if !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("get %q: err = %v, want ErrInvalidKey", key, err)
		}
		if rc != nil {
			rc.Close()
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("stat %q: err = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("delete %q: err = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"/", "/x", "a//", "../", "a/../", "a\\", "x\x00"} {
		err := s.List(ctx, prefix, func(objstore.ObjectInfo) error { return nil })
		if !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("list %q: err = %v, want ErrInvalidKey", prefix, err)
		}
	}
	if got := Keys(t, s, ""); len(got) != 0 {
		t.Errorf("invalid puts left objects: %q", got)
	}
}

func testFailedPut(t *testing.T, s objstore.Store) {
	old := []byte("the previous object")
	MustPut(t, s, "f/obj", old)
	boom := errors.New("disk on fire")
	for _, key := range []string{"f/obj", "f/new"} {
		r := &failingReader{r: io.LimitReader(rand.NewChaCha8([32]byte{7}), 1<<20), err: boom}
		if _, err := s.Put(t.Context(), key, r, objstore.PutOptions{}); err == nil {
			t.Fatalf("put %q from a failing reader succeeded", key)
		}
	}
	if got := MustGet(t, s, "f/obj"); !bytes.Equal(got, old) {
		t.Fatalf("after a failed put, get = %d bytes, want the previous %q", len(got), old)
	}
	if st, err := s.Stat(t.Context(), "f/obj"); err != nil || !sizeIs(st.Size, int64(len(old))) {
		t.Fatalf("after a failed put, stat = %+v, %v", st, err)
	}
	if _, err := s.Stat(t.Context(), "f/new"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("failed put of a new key: stat err = %v, want ErrNotFound", err)
	}
	if got := Keys(t, s, ""); !slices.Equal(got, []string{"f/obj"}) {
		t.Fatalf("after a failed put, list = %q", got)
	}
}

func testCancelledPut(t *testing.T, s objstore.Store) {
	old := []byte("keep me")
	MustPut(t, s, "c/obj", old)

	// Cancelled before the call.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, key := range []string{"c/obj", "c/before"} {
		if _, err := s.Put(ctx, key, onlyReader{bytes.NewReader([]byte("new"))}, objstore.PutOptions{}); err == nil {
			t.Fatalf("put %q with a cancelled context succeeded", key)
		}
	}

	// Cancelled while streaming: the reader cancels after 1 MiB and keeps supplying data.
	for _, key := range []string{"c/obj", "c/during"} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancellingReader{r: io.LimitReader(rand.NewChaCha8([32]byte{9}), 8<<20), after: 1 << 20, cancel: cancel}
		_, err := s.Put(ctx, key, r, objstore.PutOptions{})
		cancel()
		if err == nil {
			t.Fatalf("put %q cancelled midway succeeded", key)
		}
	}

	if got := MustGet(t, s, "c/obj"); !bytes.Equal(got, old) {
		t.Fatalf("after cancelled puts, get = %d bytes, want %q", len(got), old)
	}
	if got := Keys(t, s, ""); !slices.Equal(got, []string{"c/obj"}) {
		t.Fatalf("after cancelled puts, list = %q", got)
	}
}

func testConcurrentPuts(t *testing.T, s objstore.Store) {
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("conc/dir/%d", i)
			data := bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i)
			if _, err := s.Put(t.Context(), key, onlyReader{bytes.NewReader(data)}, objstore.PutOptions{}); err != nil {
				t.Errorf("put %q: %v", key, err)
			}
		})
	}
	wg.Wait()
	got := Keys(t, s, "conc/")
	if len(got) != n {
		t.Fatalf("list after concurrent puts = %q, want %d keys", got, n)
	}
	for i := range n {
		key := fmt.Sprintf("conc/dir/%d", i)
		want := bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i)
		if b := MustGet(t, s, key); !bytes.Equal(b, want) {
			t.Errorf("get %q: %d bytes, want %d", key, len(b), len(want))
		}
	}
}

// onlyReader hides every method but Read (e.g. bytes.Reader's Seek and WriteTo), so
// backends are tested on plain streams.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// failingReader returns r's bytes, then err instead of io.EOF.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// cancellingReader calls cancel once more than after bytes have been read, and keeps
// returning data.
type cancellingReader struct {
	r      io.Reader
	after  int64
	read   int64
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	if c.read > c.after {
		c.cancel()
	}
	return n, err
}
