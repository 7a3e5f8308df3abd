// Package s3test runs a real S3-compatible server for tests: versitygw v1.8.0 with its
// posix backend on 127.0.0.1, built with `go install` the first time. It also has a
// fault-injecting proxy to put in front of it. Only tests import it.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Module is the versitygw version the tests run.
const Module = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Credentials and region of every server started here.
const (
	AccessKey = "akoshatest"
	SecretKey = "akoshatestsecret"
	Region    = "us-east-1"
)

// Server is a running versitygw.
type Server struct {
	// Endpoint is its base URL, http://127.0.0.1:<port>.
	Endpoint string
	// Dir is the posix backend's root: each bucket is a directory in it.
	Dir  string
	stop func()
	seq  atomic.Int64
}

// Start builds versitygw if needed and starts it on a free port of 127.0.0.1 with a posix
// backend in a new temporary directory, and waits (at most 20 s) until it answers.
func Start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "akosha-s3-test-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()

	var logs bytes.Buffer
	cmd := exec.Command(bin, "--access", AccessKey, "--secret", SecretKey,
		"--port", addr, "--region", Region, "--quiet", "posix", dir)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s := &Server{Endpoint: "http://" + addr, Dir: dir}
	s.stop = func() {
		cmd.Process.Kill()
		<-exited
		os.RemoveAll(dir)
	}
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := client.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		select {
		case err := <-exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("versitygw exited: %v\n%s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("versitygw did not answer on %s: %v\n%s", addr, err, logs.String())
		}
	}
}

// Stop kills the server and removes its data.
func (s *Server) Stop() { s.stop() }

// NewBucket creates an empty bucket and returns its name; prefix keeps names apart
// between tests.
func (s *Server) NewBucket(ctx context.Context, prefix string) (string, error) {
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), s.seq.Add(1))
	_, err := s.Client().CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("create bucket %s: %w", name, err)
	}
	return name, nil
}

// Client returns a plain S3 client for the server.
func (s *Server) Client() *awss3.Client {
	return awss3.New(awss3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}

// Binary returns the path of versitygw in GOPATH/bin, installing it first if it is not
// there (about a minute on a cold build cache).
func Binary() (string, error) {
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOPATH: %w", err)
	}
	gopath := strings.TrimSpace(strings.Split(string(out), string(os.PathListSeparator))[0])
	bin := filepath.Join(gopath, "bin", "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintf(os.Stderr, "building versitygw: go install %s\n", Module)
	start := time.Now()
	cmd := exec.Command("go", "install", Module)
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Join(gopath, "bin"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", Module, err, out)
	}
	fmt.Fprintf(os.Stderr, "built versitygw in %s\n", time.Since(start).Round(time.Second))
	return bin, nil
}

// The server shared by a test binary: started by the first Shared call, stopped by
// StopShared (call it from TestMain after m.Run).
var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the test binary's shared server, starting it on first use.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		t.Fatalf("start versitygw: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared server if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}
