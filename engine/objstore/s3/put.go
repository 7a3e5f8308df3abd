package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/akosha/akosha/engine/objstore"
)

// Put stores r under key. A stream of at most PartSize bytes is sent with one PutObject;
// a longer one with a multipart upload of PartSize parts, Concurrency of them in flight,
// which is aborted if reading, an upload or ctx fails, so the previous object under key
// stays intact. The returned ModTime is the local time at completion.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := objstore.ValidKey(key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("s3 put %q: %w", key, err)
	}
	info := objstore.ObjectInfo{Key: key, Metadata: objstore.NormalizeMetadata(opts.Metadata)}
	c := &chunker{r: r}
	buf := make([]byte, s.partSize)
	n, last, err := c.next(buf)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("s3 put %q: read: %w", key, err)
	}
	if last {
		if err := s.putObject(ctx, key, buf[:n], opts); err != nil {
			return objstore.ObjectInfo{}, fmt.Errorf("s3 put %q: %w", key, err)
		}
		info.Size = int64(n)
	} else {
		size, err := s.putMultipart(ctx, key, c, buf, n, opts)
		if err != nil {
			return objstore.ObjectInfo{}, fmt.Errorf("s3 put %q: %w", key, err)
		}
		info.Size = size
	}
	info.ModTime = time.Now()
	return info, nil
}

func (s *Store) putObject(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	a := s.attrs(opts)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(s.objectKey(key)),
		Body:                 bytes.NewReader(data),
		ContentLength:        aws.Int64(int64(len(data))),
		Metadata:             a.metadata,
		Tagging:              a.tagging,
		ContentType:          a.contentType,
		ServerSideEncryption: a.sse,
		SSEKMSKeyId:          a.kmsKeyID,
	})
	return err
}

// putAttrs are the attributes a new object gets, by PutObject or CreateMultipartUpload.
type putAttrs struct {
	metadata             map[string]string
	tagging, contentType *string
	sse                  types.ServerSideEncryption
	kmsKeyID             *string
}

func (s *Store) attrs(opts objstore.PutOptions) putAttrs {
	a := putAttrs{metadata: objstore.NormalizeMetadata(opts.Metadata), tagging: s.tagging(opts.Tags), sse: s.sse}
	if opts.ContentType != "" {
		a.contentType = aws.String(opts.ContentType)
	}
	if s.sse != "" && s.kmsKeyID != "" {
		a.kmsKeyID = aws.String(s.kmsKeyID)
	}
	return a
}

// putMultipart uploads first (the first n bytes of buf, a full part) and the rest of c
// as a multipart upload, and returns the object size.
func (s *Store) putMultipart(ctx context.Context, key string, c *chunker, first []byte, n int, opts objstore.PutOptions) (size int64, err error) {
	a := s.attrs(opts)
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(s.objectKey(key)),
		Metadata:             a.metadata,
		Tagging:              a.tagging,
		ContentType:          a.contentType,
		ServerSideEncryption: a.sse,
		SSEKMSKeyId:          a.kmsKeyID,
	})
	if err != nil {
		return 0, fmt.Errorf("create multipart upload: %w", err)
	}
	uploadID := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		// ctx may be the reason for failing: abort with a context of our own.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if aerr := s.abort(actx, key, uploadID); aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort multipart upload: %w", aerr))
		}
	}()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		parts []types.CompletedPart
		// free holds idle part buffers: one is being filled while at most
		// s.concurrency are uploading, so no more than s.concurrency+1 exist.
		free = make(chan []byte, s.concurrency+1)
		// slots limits the uploads in flight.
		slots = make(chan struct{}, s.concurrency)
	)
	upload := func(num int32, buf []byte, n int) {
		defer wg.Done()
		defer func() { <-slots }()
		defer func() { free <- buf }()
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:        aws.String(s.bucket),
			Key:           aws.String(s.objectKey(key)),
			UploadId:      uploadID,
			PartNumber:    aws.Int32(num),
			Body:          bytes.NewReader(buf[:n]),
			ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			cancel(fmt.Errorf("upload part %d: %w", num, err))
			return
		}
		mu.Lock()
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		mu.Unlock()
	}

	buf, last := first, false
	var readErr error
	for num := int32(1); ; num++ {
		if num > maxParts {
			readErr = fmt.Errorf("object larger than %d parts of %d bytes", maxParts, s.partSize)
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		size += int64(n)
		wg.Add(1)
		go upload(num, buf, n)
		if last {
			break
		}
		select {
		case buf = <-free:
		default:
			buf = make([]byte, s.partSize)
		}
		if n, last, readErr = c.next(buf); readErr != nil {
			readErr = fmt.Errorf("read: %w", readErr)
			break
		}
	}
	if readErr != nil {
		cancel(readErr)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return 0, context.Cause(ctx)
	}

	sort.Slice(parts, func(i, j int) bool { return *parts[i].PartNumber < *parts[j].PartNumber })
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(s.objectKey(key)),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return 0, fmt.Errorf("complete multipart upload: %w", err)
	}
	return size, nil
}

// tagging encodes tags for the Tagging header, or nil when tags are disabled.
func (s *Store) tagging(tags map[string]string) *string {
	if s.noTags {
		return nil
	}
	return tagging(tags)
}

// abort aborts a multipart upload until the server no longer knows it. A part upload that
// was cancelled on our side may still be completing on the server and can outlive one
// abort (AWS documents that an abort may have to be repeated; versitygw recreates an
// aborted upload when such a part lands after the abort), so abort, check with ListParts,
// and repeat until the upload is gone twice in a row, abortSettle apart.
func (s *Store) abort(ctx context.Context, key string, uploadID *string) error {
	var err error
	goneBefore := false
	for attempt := 0; attempt < 8; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			}
		}
		_, err = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(s.objectKey(key)), UploadId: uploadID,
		})
		var noUpload *types.NoSuchUpload
		if err != nil && !errors.As(err, &noUpload) {
			continue
		}
		_, lerr := s.client.ListParts(ctx, &s3.ListPartsInput{
			Bucket: aws.String(s.bucket), Key: aws.String(s.objectKey(key)), UploadId: uploadID,
		})
		if errors.As(lerr, &noUpload) || isNotFound(lerr) {
			if goneBefore {
				return nil // gone, and stayed gone
			}
			goneBefore = true
			select {
			case <-time.After(abortSettle):
			case <-ctx.Done():
				return nil // gone when last seen; the caller's time is up
			}
			attempt-- // a settle check is not a failed attempt
			continue
		}
		goneBefore = false
		err = fmt.Errorf("upload %s still listed after abort", aws.ToString(uploadID))
	}
	return err
}

// abortSettle is how long abort waits before checking an aborted upload stayed gone.
const abortSettle = 200 * time.Millisecond

// chunker cuts a stream into parts and knows which part is the last one, reading one
// byte ahead after each full part.
type chunker struct {
	r       io.Reader
	peek    [1]byte
	hasPeek bool
}

// next fills buf from the stream and returns the byte count and whether the stream
// ended with them. Only the last part may be shorter than buf.
func (c *chunker) next(buf []byte) (n int, last bool, err error) {
	if c.hasPeek {
		buf[0] = c.peek[0]
		n, c.hasPeek = 1, false
	}
	m, err := io.ReadFull(c.r, buf[n:])
	n += m
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return n, true, nil
	case err != nil:
		return n, false, err
	}
	k, err := io.ReadFull(c.r, c.peek[:])
	switch {
	case k == 1:
		c.hasPeek = true
		return n, false, nil
	case err == io.EOF:
		return n, true, nil
	default:
		return n, false, err
	}
}

// tagging returns the x-amz-tagging value for tags, nil when there are none.
func tagging(tags map[string]string) *string {
	if len(tags) == 0 {
		return nil
	}
	return aws.String(encodeTags(tags))
}
