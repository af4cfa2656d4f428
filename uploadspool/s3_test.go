package uploadspool_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/uploadspool"
)

func newS3Spool(t *testing.T, srv testenv.S3Server, pool *pgxpool.Pool) *uploadspool.S3 {
	t.Helper()
	s, err := uploadspool.NewS3(uploadspool.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket, Prefix: "spool/",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, TempDir: t.TempDir()}, pool, slog.Default())
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// An upload spooled in a real S3-compatible server (versitygw) through one
// replica is continued and finished through another that shares only the
// bucket and the database; ids stay threadbox's own; removal leaves nothing.
func TestS3SpoolAcrossReplicas(t *testing.T) {
	pool, _ := testenv.Database(t)
	srv := testenv.S3(t)
	a, b := newS3Spool(t, srv, pool), newS3Spool(t, srv, pool)
	ctx := context.Background()

	data := make([]byte, 12<<20+12345)
	_, _ = rand.Read(data)
	const id = "0123456789abcdef0123456789abcdef"
	up, err := a.NewUpload(ctx, handler.FileInfo{ID: id, Size: int64(len(data)), MetaData: handler.MetaData{"owner": "alice", "path": "/big.bin"}})
	require.NoError(t, err)
	first := 7<<20 + 3 // more than a part, and a part's worth left over
	n, err := up.WriteChunk(ctx, 0, bytes.NewReader(data[:first]))
	require.NoError(t, err)
	require.EqualValues(t, first, n)

	up, err = b.GetUpload(ctx, id)
	require.NoError(t, err)
	info, err := up.GetInfo(ctx)
	require.NoError(t, err)
	require.Equal(t, id, info.ID, "the upload keeps its own id")
	require.EqualValues(t, first, info.Offset, "replica B sees what A received")
	require.Equal(t, "alice", info.MetaData["owner"])
	n, err = up.WriteChunk(ctx, info.Offset, bytes.NewReader(data[first:]))
	require.NoError(t, err)
	require.EqualValues(t, len(data)-first, n)
	require.NoError(t, up.FinishUpload(ctx))

	r, err := a.Open(ctx, id)
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, r.Close())
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the finished upload reads back whole through A")

	stale, err := a.Stale(ctx, time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, []string{id}, stale)
	stale, err = a.Stale(ctx, time.Now().Add(-time.Minute))
	require.NoError(t, err)
	require.Empty(t, stale, "it received bytes a moment ago")

	require.NoError(t, b.Remove(ctx, id))
	_, err = a.GetUpload(ctx, id)
	require.ErrorIs(t, err, handler.ErrNotFound)
	require.NoError(t, a.Remove(ctx, id), "removing twice is fine")
	objs, err := srv.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	require.NoError(t, err)
	require.Empty(t, objs.Contents, "nothing left in the bucket")
	mps, err := srv.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(srv.Bucket)})
	require.NoError(t, err)
	require.Empty(t, mps.Uploads, "no multipart upload left open")

	// An upload terminated before it finished leaves nothing either.
	up, err = a.NewUpload(ctx, handler.FileInfo{ID: "fedcba9876543210fedcba9876543210", Size: 10, MetaData: handler.MetaData{"owner": "bob"}})
	require.NoError(t, err)
	_, err = up.WriteChunk(ctx, 0, bytes.NewReader([]byte("hello")))
	require.NoError(t, err)
	require.NoError(t, a.AsTerminatableUpload(up).Terminate(ctx))
	_, err = b.GetUpload(ctx, "fedcba9876543210fedcba9876543210")
	require.ErrorIs(t, err, handler.ErrNotFound)
	objs, err = srv.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	require.NoError(t, err)
	require.Empty(t, objs.Contents)
}
