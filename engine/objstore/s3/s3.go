// Package s3 is the objstore backend for Amazon S3 and S3-compatible servers (MinIO,
// versitygw, Ceph RGW, ...). Objects are written with a single PutObject when they fit in
// one part and with a multipart upload otherwise, so a reader never sees a partial object.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/akosha/akosha/engine/objstore"
)

const (
	// MinPartSize is the smallest part S3 accepts in a multipart upload (but the last).
	MinPartSize = 5 << 20
	// DefaultPartSize is the part size used when Config.PartSize is zero.
	DefaultPartSize = 16 << 20
	// DefaultConcurrency is the number of parts in flight when Config.Concurrency is zero.
	DefaultConcurrency = 4
	// DefaultMaxAttempts is the request attempts when Config.MaxAttempts is zero.
	DefaultMaxAttempts = 5
	// maxParts is S3's limit on the parts of one multipart upload.
	maxParts = 10000
	// abortTimeout bounds the AbortMultipartUpload sent after a failed Put.
	abortTimeout = 30 * time.Second
)

// Server-side encryption modes accepted in Config.SSE.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

// Config configures a Store.
type Config struct {
	Bucket string // required
	// Prefix is prepended to every key, joined with '/'; List strips it. Leading and
	// trailing slashes are ignored.
	Prefix string
	// Region is the bucket's region; empty takes it from the AWS environment, or
	// "us-east-1" when Endpoint is set and the environment has none.
	Region string
	// Endpoint is the base URL of an S3-compatible server ("http://127.0.0.1:7070");
	// empty means AWS.
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket instead of bucket.endpoint, as most
	// S3-compatible servers need.
	PathStyle bool
	// SSE is the server-side encryption of new objects: "", "AES256" or "aws:kms".
	SSE string
	// KMSKeyID is the KMS key for SSE "aws:kms"; empty uses the bucket's default key.
	KMSKeyID string
	// PartSize is the multipart chunk size in bytes: default 16 MiB, at least 5 MiB. An
	// object of at most PartSize bytes is written with one PutObject. S3 allows 10,000
	// parts, so PartSize limits the object size (16 MiB parts: about 156 GiB).
	PartSize int64
	// Concurrency is the number of parts uploaded at once (default 4). A Put holds at
	// most Concurrency+1 part buffers in memory.
	Concurrency int
	// MaxAttempts is the attempts per request, with the SDK's standard retryer and
	// backoff (default 5).
	MaxAttempts int
	// DisableTags drops PutOptions.Tags: for servers without S3 object tagging.
	DisableTags bool
	// Credentials signs requests; nil uses the standard AWS chain (environment, shared
	// config, web identity, container or instance role).
	Credentials aws.CredentialsProvider
}

// Store is an objstore.Store on an S3 bucket. It is safe for concurrent use.
type Store struct {
	client      *s3.Client
	bucket      string
	prefix      string // without leading or trailing '/'
	partSize    int64
	concurrency int
	sse         types.ServerSideEncryption
	kmsKeyID    string
	noTags      bool
}

var _ objstore.Store = (*Store)(nil)

// New returns a Store for cfg. It checks the configuration but sends no request.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: bucket is required")
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if err := objstore.ValidPrefix(prefix); err != nil {
		return nil, fmt.Errorf("s3: prefix: %w", err)
	}
	s := &Store{
		bucket:      cfg.Bucket,
		prefix:      prefix,
		partSize:    cfg.PartSize,
		concurrency: cfg.Concurrency,
		kmsKeyID:    cfg.KMSKeyID,
		noTags:      cfg.DisableTags,
	}
	switch {
	case s.partSize == 0:
		s.partSize = DefaultPartSize
	case s.partSize < MinPartSize:
		return nil, fmt.Errorf("s3: part size %d is below the minimum %d", s.partSize, MinPartSize)
	}
	switch {
	case s.concurrency == 0:
		s.concurrency = DefaultConcurrency
	case s.concurrency < 0:
		return nil, fmt.Errorf("s3: concurrency %d is negative", s.concurrency)
	}
	maxAttempts := cfg.MaxAttempts
	switch {
	case maxAttempts == 0:
		maxAttempts = DefaultMaxAttempts
	case maxAttempts < 0:
		return nil, fmt.Errorf("s3: max attempts %d is negative", maxAttempts)
	}
	switch cfg.SSE {
	case "":
		if cfg.KMSKeyID != "" {
			return nil, errors.New("s3: a KMS key id needs SSE \"aws:kms\"")
		}
	case SSEAES256:
		if cfg.KMSKeyID != "" {
			return nil, errors.New("s3: a KMS key id needs SSE \"aws:kms\", not \"AES256\"")
		}
		s.sse = types.ServerSideEncryptionAes256
	case SSEKMS:
		s.sse = types.ServerSideEncryptionAwsKms
	default:
		return nil, fmt.Errorf("s3: unknown SSE %q (want %q or %q)", cfg.SSE, SSEAES256, SSEKMS)
	}

	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = maxAttempts })
		}),
		// S3-compatible servers often reject the CRC checksums the SDK sends by default.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load aws config: %w", err)
	}
	if awsCfg.Region == "" && cfg.Endpoint != "" {
		awsCfg.Region = "us-east-1"
	}
	s.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return s, nil
}

// Client returns the underlying S3 client.
func (s *Store) Client() *s3.Client { return s.client }

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// URL returns "s3://bucket/prefix".
func (s *Store) URL() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

// objectKey returns the S3 key of key.
func (s *Store) objectKey(key string) string {
	if s.prefix == "" {
		return key
	}
	return s.prefix + "/" + key
}

// Get returns the object under key; the caller closes the reader.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	if err := objstore.ValidKey(key); err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil {
		return nil, objstore.ObjectInfo{}, s.wrap("get", key, err)
	}
	info := objstore.ObjectInfo{
		Key:      key,
		Size:     aws.ToInt64(out.ContentLength),
		ModTime:  aws.ToTime(out.LastModified),
		Metadata: objstore.NormalizeMetadata(out.Metadata),
	}
	return out.Body, info, nil
}

// Stat returns the object's size, modification time and metadata.
func (s *Store) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if err := objstore.ValidKey(key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil {
		return objstore.ObjectInfo{}, s.wrap("stat", key, err)
	}
	return objstore.ObjectInfo{
		Key:      key,
		Size:     aws.ToInt64(out.ContentLength),
		ModTime:  aws.ToTime(out.LastModified),
		Metadata: objstore.NormalizeMetadata(out.Metadata),
	}, nil
}

// List calls fn for every object whose key starts with prefix, in lexicographic order
// (S3 lists keys in UTF-8 byte order). ObjectInfo.Metadata is not filled in.
func (s *Store) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	if err := objstore.ValidPrefix(prefix); err != nil {
		return err
	}
	strip := ""
	if s.prefix != "" {
		strip = s.prefix + "/"
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(strip + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3 list %q: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(obj.Key), strip)
			if !ok {
				continue
			}
			err := fn(objstore.ObjectInfo{
				Key:     key,
				Size:    aws.ToInt64(obj.Size),
				ModTime: aws.ToTime(obj.LastModified),
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes the object under key; deleting a missing key succeeds.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := objstore.ValidKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("s3 delete %q: %w", key, err)
	}
	return nil
}

// wrap adds op and key to err, mapping a missing object to objstore.ErrNotFound.
func (s *Store) wrap(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("s3 %s %q: %w", op, key, objstore.ErrNotFound)
	}
	return fmt.Errorf("s3 %s %q: %w", op, key, err)
}

// isNotFound reports whether err says that the object does not exist. A missing bucket
// is not reported as a missing object, except by HeadObject, whose 404 has no body to
// tell them apart.
func isNotFound(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchBucket" {
		return false
	}
	var noSuchKey *types.NoSuchKey
	var notFound *types.NotFound
	var resp *smithyhttp.ResponseError
	return errors.As(err, &noSuchKey) || errors.As(err, &notFound) ||
		errors.As(err, &resp) && resp.HTTPStatusCode() == 404
}

// encodeTags returns tags as the URL query string S3 takes in x-amz-tagging, sorted by
// key; "" for no tags.
func encodeTags(tags map[string]string) string {
	if len(tags) == 0 {
		return ""
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(esc(k))
		b.WriteByte('=')
		b.WriteString(esc(tags[k]))
	}
	return b.String()
}
