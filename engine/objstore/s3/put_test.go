package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/s3"
)

func TestPutMultipart(t *testing.T) {
	s := newStore(t, func(c *s3.Config) { c.PartSize = s3.MinPartSize; c.Concurrency = 2 })
	const part = s3.MinPartSize
	for _, size := range []int{part - 1, part, part + 1, 2 * part, 12 << 20} {
		data := pattern(size, byte(size))
		// iotest-like one-byte-at-a-time reads would be slow; a plain reader that is not
		// a bytes.Reader keeps the Store from relying on Seek or Len.
		info, err := s.Put(context.Background(), "big", io.MultiReader(bytes.NewReader(data)), objstore.PutOptions{
			Metadata: map[string]string{"size": "x"},
			Tags:     map[string]string{"kind": "test"},
		})
		if err != nil {
			t.Fatalf("Put %d bytes: %v", size, err)
		}
		if info.Size != int64(size) {
			t.Errorf("Put %d bytes: Size = %d", size, info.Size)
		}
		got, ginfo := mustGet(t, s, "big")
		if !bytes.Equal(got, data) {
			t.Errorf("Get after Put of %d bytes: got %d bytes, not the same", size, len(got))
		}
		if ginfo.Size != int64(size) || ginfo.Metadata["size"] != "x" {
			t.Errorf("Get after Put of %d bytes: info %+v", size, ginfo)
		}
		// A multipart object's ETag ends in "-<parts>".
		head, err := s.Client().HeadObject(context.Background(), &awss3.HeadObjectInput{
			Bucket: aws.String(s.Bucket()), Key: aws.String("big"),
		})
		if err != nil {
			t.Fatal(err)
		}
		parts := (size + part - 1) / part
		multipart := strings.HasSuffix(strings.Trim(aws.ToString(head.ETag), `"`), fmt.Sprintf("-%d", parts))
		if got, want := multipart, parts > 1; got != want {
			t.Errorf("Put %d bytes: ETag %s, want multipart %v with %d parts", size, aws.ToString(head.ETag), want, parts)
		}
	}
	assertNoUploads(t, s)
}

// failingReader returns n bytes of data and then err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	p = p[:min(len(p), r.n)]
	clear(p)
	r.n -= len(p)
	return len(p), nil
}

func TestPutAbort(t *testing.T) {
	s := newStore(t, func(c *s3.Config) { c.PartSize = s3.MinPartSize; c.Concurrency = 2 })
	old := []byte("the old object")
	mustPut(t, s, "k", old, objstore.PutOptions{})

	t.Run("reader error", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := s.Put(context.Background(), "k", &failingReader{n: 12 << 20, err: boom}, objstore.PutOptions{})
		if !errors.Is(err, boom) {
			t.Fatalf("Put: err = %v, want %v", err, boom)
		}
		if got, _ := mustGet(t, s, "k"); !bytes.Equal(got, old) {
			t.Errorf("after failed Put: got %d bytes, want the old object", len(got))
		}
		assertNoUploads(t, s)
	})
	t.Run("reader error in first part", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := s.Put(context.Background(), "k", &failingReader{n: 100, err: boom}, objstore.PutOptions{})
		if !errors.Is(err, boom) {
			t.Fatalf("Put: err = %v, want %v", err, boom)
		}
		if got, _ := mustGet(t, s, "k"); !bytes.Equal(got, old) {
			t.Errorf("after failed Put: got %d bytes, want the old object", len(got))
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		r := &cancelReader{r: bytes.NewReader(pattern(20<<20, 1)), after: 11 << 20, cancel: cancel}
		_, err := s.Put(ctx, "k", r, objstore.PutOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put: err = %v, want context.Canceled", err)
		}
		if got, _ := mustGet(t, s, "k"); !bytes.Equal(got, old) {
			t.Errorf("after cancelled Put: got %d bytes, want the old object", len(got))
		}
		assertNoUploads(t, s)
	})
}

// cancelReader reads from r and calls cancel once after bytes have been read.
type cancelReader struct {
	r      io.Reader
	after  int
	cancel func()
}

func (r *cancelReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if r.after -= n; r.after <= 0 {
		r.cancel()
	}
	return n, err
}

// assertNoUploads fails t if a multipart upload is in progress in s's bucket.
func assertNoUploads(t *testing.T, s *s3.Store) {
	t.Helper()
	if n := uploads(t, s); n != 0 {
		t.Errorf("%d multipart uploads in progress, want none", n)
	}
}

// uploads returns the number of multipart uploads in progress in s's bucket.
func uploads(t *testing.T, s *s3.Store) int {
	t.Helper()
	out, err := s.Client().ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{
		Bucket: aws.String(s.Bucket()),
	})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	return len(out.Uploads)
}

// TestUploadsSeen checks that uploads sees an upload in progress, so that
// assertNoUploads can fail.
func TestUploadsSeen(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	out, err := s.Client().CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket: aws.String(s.Bucket()), Key: aws.String("pending"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := uploads(t, s); got != 1 {
		t.Errorf("uploads = %d with one in progress, want 1", got)
	}
	_, err = s.Client().AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{
		Bucket: aws.String(s.Bucket()), Key: aws.String("pending"), UploadId: out.UploadId,
	})
	if err != nil {
		t.Fatal(err)
	}
	assertNoUploads(t, s)
}

func TestPutTags(t *testing.T) {
	s := newStore(t, nil)
	tags := map[string]string{"retention": "30 days", "kind": "base=wal+1/a:b@c"} // AWS allows letters, digits, space and + - = . _ : / @
	mustPut(t, s, "tagged", []byte("x"), objstore.PutOptions{Tags: tags})
	out, err := s.Client().GetObjectTagging(context.Background(), &awss3.GetObjectTaggingInput{
		Bucket: aws.String(s.Bucket()), Key: aws.String("tagged"),
	})
	if err != nil {
		t.Fatalf("GetObjectTagging: %v", err)
	}
	got := map[string]string{}
	for _, tag := range out.TagSet {
		got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	if len(got) != len(tags) || got["retention"] != tags["retention"] || got["kind"] != tags["kind"] {
		t.Errorf("tags = %v, want %v", got, tags)
	}
}

func TestPutTagsDisabled(t *testing.T) {
	s := newStore(t, func(c *s3.Config) { c.DisableTags = true })
	mustPut(t, s, "untagged", []byte("x"), objstore.PutOptions{Tags: map[string]string{"a": "b"}})
	out, err := s.Client().GetObjectTagging(context.Background(), &awss3.GetObjectTaggingInput{
		Bucket: aws.String(s.Bucket()), Key: aws.String("untagged"),
	})
	if err != nil {
		t.Fatalf("GetObjectTagging: %v", err)
	}
	if len(out.TagSet) != 0 {
		t.Fatalf("tags stored although disabled: %v", out.TagSet)
	}
}

func TestPutSSE(t *testing.T) {
	s := newStore(t, func(c *s3.Config) { c.SSE = s3.SSEAES256 })
	_, err := s.Put(context.Background(), "enc", bytes.NewReader([]byte("secret")), objstore.PutOptions{})
	if err != nil {
		t.Fatalf("Put with SSE AES256: %v", err)
	}
	head, err := s.Client().HeadObject(context.Background(), &awss3.HeadObjectInput{
		Bucket: aws.String(s.Bucket()), Key: aws.String("enc"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if head.ServerSideEncryption != "AES256" {
		t.Logf("versitygw accepted SSE AES256 but reports ServerSideEncryption %q", head.ServerSideEncryption)
	}
}

func TestEncodeTagsQuery(t *testing.T) {
	// The tag header must parse back as a URL query string.
	tags := map[string]string{"a b": "c&d", "e=f": "g+h/é"}
	s := s3.EncodeTags(tags)
	q, err := url.ParseQuery(s)
	if err != nil {
		t.Fatalf("ParseQuery(%q): %v", s, err)
	}
	for k, v := range tags {
		if q.Get(k) != v {
			t.Errorf("%q: %q = %q, want %q", s, k, q.Get(k), v)
		}
	}
}
