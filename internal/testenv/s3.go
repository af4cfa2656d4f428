package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is a real S3-compatible server for tests: versitygw (Apache-2.0,
// an S3 gateway over a directory, `make versitygw` builds it into .bin/) with
// one empty bucket.
type S3Server struct {
	Endpoint  string
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
	// Client talks to it (to look behind the code under test).
	Client *s3.Client
}

// S3 starts an S3 server for t; it is stopped by t.Cleanup. Tests fail (not
// skip) when the binary is missing.
func S3(t testing.TB) S3Server {
	t.Helper()
	bin := filepath.Join(RepoRoot(t), ".bin", "versitygw")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("versitygw missing at %s: run `make versitygw` (make test does)", bin)
	}
	s := S3Server{Region: "us-east-1", Bucket: "threadbox-test", AccessKey: "test-access-" + randomHex(4), SecretKey: "test-secret-" + randomHex(8)}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	var out bytes.Buffer
	cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region,
		"--port", addr, "--quiet", "posix", "--sidecar", t.TempDir(), t.TempDir())
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("versitygw exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Endpoint = "http://" + addr
	s.Client = s3.New(s3.Options{
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
	})
	if _, err := s.Client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("create bucket: %v\n%s", err, out.String())
	}
	return s
}
