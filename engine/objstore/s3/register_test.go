package s3_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/backend"
)

func TestBackendOpen(t *testing.T) {
	bucket := newBucket(t)
	// backend.Options has no credentials: they come from the standard AWS chain.
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	s, err := backend.Open(context.Background(), "s3://"+bucket+"/backups/prod/", backend.Options{
		Endpoint: endpoint, PathStyle: true, MaxAttempts: 2,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got, want := s.URL(), "s3://"+bucket+"/backups/prod"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	mustPut(t, s, "k", []byte("v"), objstore.PutOptions{})
	_, err = rawClient(t).HeadObject(context.Background(), &awss3.HeadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("backups/prod/k"),
	})
	if err != nil {
		t.Errorf("object not under the URL's prefix: %v", err)
	}
}
