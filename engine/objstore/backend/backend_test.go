package backend

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		url     string
		want    target
		wantErr string // substring of the error; "" for success
	}{
		{"file:///var/lib/akosha/cold", target{scheme: "file", path: "/var/lib/akosha/cold"}, ""},
		{"file:///var/lib/akosha/cold/", target{scheme: "file", path: "/var/lib/akosha/cold"}, ""},
		{"file://localhost/srv/store", target{scheme: "file", path: "/srv/store"}, ""},
		{"FILE:///x", target{scheme: "file", path: "/x"}, ""},
		{"file://relative/path", target{}, "must be absolute"},
		{"file:relative", target{}, "must be absolute"},
		{"file://", target{}, "must be absolute"},
		{"s3://bucket", target{scheme: "s3", bucket: "bucket"}, ""},
		{"s3://bucket/", target{scheme: "s3", bucket: "bucket"}, ""},
		{"s3://my-bucket/backups/prod", target{scheme: "s3", bucket: "my-bucket", prefix: "backups/prod"}, ""},
		{"s3://my-bucket/backups/prod/", target{scheme: "s3", bucket: "my-bucket", prefix: "backups/prod"}, ""},
		{"s3:///prefix", target{}, "missing bucket"},
		{"s3:bucket", target{}, "missing bucket"},
		{"s3://bucket/a//b", target{}, "prefix"},
		{"s3://bucket/a/../b", target{}, "prefix"},
		{"s3://localhost:9000/bucket", target{}, "Endpoint"},
		{"s3://key:secret@bucket/p", target{}, "credentials"},
		{"s3://bucket/p?region=x", target{}, "query"},
		{"gs://bucket/p", target{}, `unknown scheme "gs"`},
		{"/abs/path", target{}, "no scheme"},
		{"", target{}, "no scheme"},
		{"%zz", target{}, "invalid URL escape"},
	} {
		got, err := parse(tc.url)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("parse(%q): %v", tc.url, err)
		case tc.wantErr != "" && err == nil:
			t.Errorf("parse(%q) = %+v, want an error containing %q", tc.url, got, tc.wantErr)
		case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
			t.Errorf("parse(%q): error %q does not contain %q", tc.url, err, tc.wantErr)
		case tc.wantErr != "" && !strings.Contains(err.Error(), tc.url):
			t.Errorf("parse(%q): error %q does not name the URL", tc.url, err)
		case got != tc.want:
			t.Errorf("parse(%q) = %+v, want %+v", tc.url, got, tc.want)
		}
	}
}

func TestOpenFile(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cold")
	s, err := Open(t.Context(), "file://"+filepath.ToSlash(root), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*file.Store); !ok {
		t.Fatalf("Open returned %T, want *file.Store", s)
	}
	if got, want := s.URL(), "file://"+filepath.ToSlash(root); got != want {
		t.Fatalf("URL() = %q, want %q", got, want)
	}
}

func TestOpenS3(t *testing.T) {
	saved := OpenS3
	t.Cleanup(func() { OpenS3 = saved })

	OpenS3 = nil
	if _, err := Open(t.Context(), "s3://b/p", Options{}); err == nil || !strings.Contains(err.Error(), "s3 backend not built in") {
		t.Fatalf("Open without an S3 backend: err = %v", err)
	}

	var gotBucket, gotPrefix string
	var gotOpts Options
	boom := errors.New("no credentials")
	OpenS3 = func(_ context.Context, bucket, prefix string, opts Options) (objstore.Store, error) {
		gotBucket, gotPrefix, gotOpts = bucket, prefix, opts
		return nil, boom
	}
	opts := Options{Region: "eu-west-1", Endpoint: "http://localhost:7070", PathStyle: true, SSE: "aws:kms", KMSKeyID: "k", PartSize: 16 << 20, Concurrency: 4, MaxAttempts: 5}
	_, err := Open(t.Context(), "s3://bucket/backups/prod/", opts)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "s3://bucket/backups/prod/") {
		t.Fatalf("Open: err = %v, want the backend's error naming the URL", err)
	}
	if gotBucket != "bucket" || gotPrefix != "backups/prod" || gotOpts != opts {
		t.Fatalf("OpenS3 got (%q, %q, %+v)", gotBucket, gotPrefix, gotOpts)
	}
}
