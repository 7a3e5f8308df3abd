package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/objstoretest"
	"github.com/akosha/akosha/engine/objstore/s3"
	"github.com/akosha/akosha/internal/s3test"
)

// The tests run against a real S3-compatible server, versitygw with its posix backend,
// started once by TestMain on 127.0.0.1 (internal/s3test). Each test gets its own bucket.

const (
	accessKey = s3test.AccessKey
	secretKey = s3test.SecretKey
)

// endpoint is the base URL of the versitygw server started by TestMain.
var endpoint string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	srv, err := s3test.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3 tests need versitygw:", err)
		return 1
	}
	defer srv.Stop()
	endpoint = srv.Endpoint
	return m.Run()
}

var bucketSeq atomic.Int64

// newBucket creates a new empty bucket and returns its name.
func newBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("akosha-test-%d-%d", os.Getpid(), bucketSeq.Add(1))
	_, err := rawClient(t).CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// testConfig returns a Config for bucket on the test server.
func testConfig(bucket string) s3.Config {
	return s3.Config{
		Bucket:      bucket,
		Region:      "us-east-1",
		Endpoint:    endpoint,
		PathStyle:   true,
		MaxAttempts: 2,
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	}
}

// mustNew returns a Store for cfg.
func mustNew(t testing.TB, cfg s3.Config) *s3.Store {
	t.Helper()
	s, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// newStore returns a Store on a new bucket, with cfg applied on top of the test defaults.
func newStore(t testing.TB, edit func(*s3.Config)) *s3.Store {
	t.Helper()
	cfg := testConfig(newBucket(t))
	if edit != nil {
		edit(&cfg)
	}
	return mustNew(t, cfg)
}

// rawClient returns a plain S3 client for the test server, to look behind a Store.
func rawClient(t testing.TB) *awss3.Client {
	t.Helper()
	s, err := s3.New(context.Background(), testConfig("unused"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s.Client()
}

// mustPut stores data under key.
func mustPut(t testing.TB, s objstore.Store, key string, data []byte, opts objstore.PutOptions) objstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(context.Background(), key, bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
	return info
}

// mustGet returns the bytes and info of key.
func mustGet(t testing.TB, s objstore.Store, key string) ([]byte, objstore.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data, info
}

// pattern returns n bytes that differ between parts and runs.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i/4099) ^ seed
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	s := newStore(t, nil)
	data := []byte("hello, akosha\n")
	opts := objstore.PutOptions{
		ContentType: "text/plain",
		Metadata:    map[string]string{"sha256": "abc123", "wal-lsn": "0/16B3748"},
	}
	info := mustPut(t, s, "backups/base/manifest.json", data, opts)
	if got, want := info.Size, int64(len(data)); got != want {
		t.Errorf("Put size = %d, want %d", got, want)
	}
	got, ginfo := mustGet(t, s, "backups/base/manifest.json")
	if !bytes.Equal(got, data) {
		t.Errorf("Get = %q, want %q", got, data)
	}
	st, err := s.Stat(context.Background(), "backups/base/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, gi := range []objstore.ObjectInfo{ginfo, st} {
		if gi.Key != "backups/base/manifest.json" || gi.Size != int64(len(data)) {
			t.Errorf("info = %+v, want key %q size %d", gi, "backups/base/manifest.json", len(data))
		}
		if gi.ModTime.IsZero() || time.Since(gi.ModTime) > time.Minute {
			t.Errorf("ModTime = %v, want about now", gi.ModTime)
		}
		for k, v := range opts.Metadata {
			if gi.Metadata[k] != v {
				t.Errorf("Metadata[%q] = %q, want %q (all: %v)", k, gi.Metadata[k], v, gi.Metadata)
			}
		}
	}
	head, err := rawClient(t).HeadObject(context.Background(), &awss3.HeadObjectInput{
		Bucket: aws.String(s.Bucket()), Key: aws.String("backups/base/manifest.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(head.ContentType), "text/plain"; got != want {
		t.Errorf("ContentType = %q, want %q", got, want)
	}

	// Replacing an object, and an empty object.
	mustPut(t, s, "backups/base/manifest.json", nil, objstore.PutOptions{})
	if got, info := mustGet(t, s, "backups/base/manifest.json"); len(got) != 0 || info.Size != 0 || len(info.Metadata) != 0 {
		t.Errorf("after replace with empty object: %q, %+v", got, info)
	}
}

func TestNotFound(t *testing.T) {
	s := newStore(t, nil)
	if _, _, err := s.Get(context.Background(), "missing/key"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Get missing: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(context.Background(), "missing/key"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Stat missing: err = %v, want ErrNotFound", err)
	}
	// A missing bucket is a configuration error, not a missing object.
	nb := mustNew(t, testConfig("no-such-bucket-akosha"))
	if _, _, err := nb.Get(context.Background(), "k"); err == nil || errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Get in missing bucket: err = %v, want an error other than ErrNotFound", err)
	}
}

func TestDelete(t *testing.T) {
	s := newStore(t, nil)
	mustPut(t, s, "a/b", []byte("x"), objstore.PutOptions{})
	for i := 0; i < 2; i++ {
		if err := s.Delete(context.Background(), "a/b"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if _, err := s.Stat(context.Background(), "a/b"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Stat after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(context.Background(), "never/was"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
}

// list returns the keys List passes to fn.
func list(t testing.TB, s objstore.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(context.Background(), prefix, func(info objstore.ObjectInfo) error {
		keys = append(keys, info.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	return keys
}

func TestList(t *testing.T) {
	bucket := newBucket(t)
	cfg := testConfig(bucket)
	cfg.Prefix = "/cluster-1/" // slashes are trimmed
	s := mustNew(t, cfg)
	if got, want := s.URL(), "s3://"+bucket+"/cluster-1"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	keys := []string{"wal/000000010000000000000002", "base/2024/b", "wal/000000010000000000000001", "base/2024/a", "wal-x", "Z", "é"}
	for _, k := range keys {
		mustPut(t, s, k, []byte(k), objstore.PutOptions{})
	}
	// An object outside the store's prefix, and one in a sibling prefix.
	other := mustNew(t, testConfig(bucket))
	mustPut(t, other, "outside", []byte("x"), objstore.PutOptions{})
	mustPut(t, other, "cluster-10/x", []byte("x"), objstore.PutOptions{})

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"Z", "base/2024/a", "base/2024/b", "wal-x", "wal/000000010000000000000001", "wal/000000010000000000000002", "é"}},
		{"wal/", []string{"wal/000000010000000000000001", "wal/000000010000000000000002"}},
		{"wal", []string{"wal-x", "wal/000000010000000000000001", "wal/000000010000000000000002"}},
		{"base/2024/a", []string{"base/2024/a"}},
		{"nothing/", nil},
	}
	for _, tt := range tests {
		if got := list(t, s, tt.prefix); !equal(got, tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
	if got, want := list(t, other, ""), []string{"cluster-1/Z"}; len(got) != 9 || got[0] != want[0] {
		t.Errorf("List of the whole bucket = %q, want 9 keys starting with %q", got, want)
	}

	// Sizes are reported, and an error from fn stops the listing.
	stop := errors.New("stop")
	var n int
	err := s.List(context.Background(), "", func(info objstore.ObjectInfo) error {
		if int(info.Size) != len(info.Key) {
			t.Errorf("List: %q size %d, want %d", info.Key, info.Size, len(info.Key))
		}
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("List with failing fn: err = %v after %d calls, want %v after 2", err, n, stop)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestInvalidKey(t *testing.T) {
	s := mustNew(t, testConfig("unused"))
	ctx := context.Background()
	for _, key := range []string{"", "/a", "a/", "a//b", "../x", "a/./b", "a\\b", "a\x00b"} {
		if _, err := s.Put(ctx, key, strings.NewReader("x"), objstore.PutOptions{}); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if _, _, err := s.Get(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Stat(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Delete(%q): err = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"/a", "a//", "../", "a\\"} {
		if err := s.List(ctx, prefix, func(objstore.ObjectInfo) error { return nil }); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("List(%q): err = %v, want ErrInvalidKey", prefix, err)
		}
	}
}

func TestNewConfig(t *testing.T) {
	base := testConfig("b")
	tests := []struct {
		name string
		edit func(*s3.Config)
		ok   bool
	}{
		{"defaults", func(*s3.Config) {}, true},
		{"no bucket", func(c *s3.Config) { c.Bucket = "" }, false},
		{"bad prefix", func(c *s3.Config) { c.Prefix = "a/../b" }, false},
		{"small part", func(c *s3.Config) { c.PartSize = 1 << 20 }, false},
		{"min part", func(c *s3.Config) { c.PartSize = s3.MinPartSize }, true},
		{"negative concurrency", func(c *s3.Config) { c.Concurrency = -1 }, false},
		{"aes256", func(c *s3.Config) { c.SSE = "AES256" }, true},
		{"kms with key", func(c *s3.Config) { c.SSE = "aws:kms"; c.KMSKeyID = "k" }, true},
		{"key without kms", func(c *s3.Config) { c.KMSKeyID = "k" }, false},
		{"unknown sse", func(c *s3.Config) { c.SSE = "rot13" }, false},
	}
	for _, tt := range tests {
		cfg := base
		tt.edit(&cfg)
		_, err := s3.New(context.Background(), cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%s: New error = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	if got, want := mustNew(t, base).URL(), "s3://b"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
}

func TestContract(t *testing.T) {
	t.Run("bucket", func(t *testing.T) {
		objstoretest.Run(t, func(t *testing.T) objstore.Store {
			return newStore(t, func(c *s3.Config) { c.PartSize = s3.MinPartSize })
		})
	})
	t.Run("prefix", func(t *testing.T) {
		objstoretest.Run(t, func(t *testing.T) objstore.Store {
			return newStore(t, func(c *s3.Config) { c.Prefix = "tenant/1" })
		})
	})
}
