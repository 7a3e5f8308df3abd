// Package backend opens an objstore.Store from a URL: file:///abs/path for a local
// directory, s3://bucket/prefix for S3 and S3-compatible servers.
package backend

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
)

// Options configure the S3 backend; the file backend ignores them. Zero values mean the
// S3 backend's defaults.
type Options struct {
	// Region is the bucket's region, e.g. "eu-west-1". Empty: from the environment.
	Region string
	// Endpoint is the base URL of an S3-compatible server (versitygw, MinIO, Google
	// Cloud Storage's XML API at https://storage.googleapis.com). Empty: AWS S3.
	Endpoint string
	// PathStyle addresses buckets as Endpoint/bucket rather than bucket.Endpoint, for
	// servers without virtual-host buckets.
	PathStyle bool
	// SSE is the server-side encryption of new objects: "" (the bucket's default),
	// "AES256" or "aws:kms".
	SSE string
	// KMSKeyID is the KMS key for SSE "aws:kms". Empty: the account's default key.
	KMSKeyID string
	// PartSize is the multipart upload part size in bytes. Zero: the backend's default.
	PartSize int64
	// Concurrency is the number of parts uploaded at once. Zero: the backend's default.
	Concurrency int
	// MaxAttempts bounds the attempts of each request, retries included. Zero: the
	// backend's default.
	MaxAttempts int
	// DisableTags stores objects without their tags, for servers that lack S3 object
	// tagging (e.g. Google Cloud Storage's XML API).
	DisableTags bool
}

// OpenS3 opens the S3 store for bucket, with keys under prefix (no leading or trailing
// '/'; empty for the whole bucket). The S3 backend package sets it; while it is nil, s3
// URLs are refused.
var OpenS3 func(ctx context.Context, bucket, prefix string, opts Options) (objstore.Store, error)

// target is a parsed store URL.
type target struct {
	scheme string // "file" or "s3"
	path   string // file: the absolute root directory
	bucket string // s3
	prefix string // s3: without leading or trailing '/'
}

// Open opens the store named by rawURL.
func Open(ctx context.Context, rawURL string, opts Options) (objstore.Store, error) {
	t, err := parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch t.scheme {
	case "file":
		s, err := file.New(t.path)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", rawURL, err)
		}
		return s, nil
	default: // "s3"
		if OpenS3 == nil {
			return nil, fmt.Errorf("open %s: s3 backend not built in", rawURL)
		}
		s, err := OpenS3(ctx, t.bucket, t.prefix, opts)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", rawURL, err)
		}
		return s, nil
	}
}

// parse checks a store URL and splits it into its parts.
func parse(rawURL string) (target, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("store URL %q: %s", rawURL, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return target{}, bad("%v", err)
	}
	if u.User != nil {
		return target{}, bad("credentials do not belong in the URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return target{}, bad("unexpected query or fragment")
	}
	switch u.Scheme {
	case "file":
		if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") {
			return target{}, bad("file path must be absolute (file:///abs/path)")
		}
		if !strings.HasPrefix(u.Path, "/") {
			return target{}, bad("file path must be absolute (file:///abs/path)")
		}
		return target{scheme: "file", path: path.Clean(u.Path)}, nil
	case "s3":
		if u.Opaque != "" || u.Host == "" {
			return target{}, bad("missing bucket (s3://bucket/prefix)")
		}
		if u.Port() != "" {
			return target{}, bad("bucket %q is a host:port; set Options.Endpoint for the server", u.Host)
		}
		prefix := strings.Trim(u.Path, "/")
		if err := objstore.ValidPrefix(prefix); err != nil {
			return target{}, bad("prefix: %v", err)
		}
		return target{scheme: "s3", bucket: u.Host, prefix: prefix}, nil
	case "":
		return target{}, bad("no scheme (want file:///abs/path or s3://bucket/prefix)")
	default:
		return target{}, bad("unknown scheme %q (want file or s3)", u.Scheme)
	}
}
