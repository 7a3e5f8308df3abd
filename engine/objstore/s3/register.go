package s3

import (
	"context"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/backend"
)

// init makes backend.Open handle s3:// URLs with this package.
func init() {
	backend.OpenS3 = func(ctx context.Context, bucket, prefix string, o backend.Options) (objstore.Store, error) {
		return New(ctx, Config{
			Bucket:      bucket,
			Prefix:      prefix,
			Region:      o.Region,
			Endpoint:    o.Endpoint,
			PathStyle:   o.PathStyle,
			SSE:         o.SSE,
			KMSKeyID:    o.KMSKeyID,
			PartSize:    o.PartSize,
			Concurrency: o.Concurrency,
			MaxAttempts: o.MaxAttempts,
			DisableTags: o.DisableTags,
		})
	}
}
