package uploadspool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/s3store"

	"github.com/threadbox/threadbox/db"
)

// S3Config locates the bucket (THREADBOX_UPLOAD_S3_*).
type S3Config struct {
	// Endpoint is the store's URL (e.g. http://minio:9000); empty for AWS.
	// A custom endpoint is addressed path-style (bucket in the path), as
	// MinIO and other S3-compatible stores expect.
	Endpoint  string
	Region    string
	Bucket    string
	Prefix    string // key prefix of every object, e.g. "threadbox-uploads/"
	AccessKey string
	SecretKey string
	// TempDir holds a part being assembled before it is sent (at most
	// MinPartSize per upload in flight, 5 MiB); empty: the system's.
	TempDir string
	// MinPartSize overrides the smallest part sent to the store (5 MiB,
	// S3's own minimum); tests lower it for stores that allow it.
	MinPartSize int64
}

// S3 is the spool in an S3 bucket, with its locks in PostgreSQL.
type S3 struct {
	store  s3store.S3Store
	pool   *pgxpool.Pool
	locker *Locker
}

var _ Spool = (*S3)(nil)

// NewS3 connects the spool (no request is made until the first upload);
// Close stops its lock listener.
func NewS3(cfg S3Config, pool *pgxpool.Pool, log *slog.Logger) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("uploadspool: an S3 spool needs a bucket")
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("uploadspool: an S3 spool needs an access key and a secret key")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.New(s3.Options{
		Region:       cfg.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		BaseEndpoint: optional(cfg.Endpoint),
		UsePathStyle: cfg.Endpoint != "",
		// Checksums only when the operation requires one: stores other than
		// AWS do not all understand the SDK's newer default trailers.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	store := s3store.New(cfg.Bucket, client)
	store.ObjectPrefix = cfg.Prefix
	store.TemporaryDirectory = cfg.TempDir
	if cfg.MinPartSize > 0 {
		store.MinPartSize = cfg.MinPartSize
		store.PreferredPartSize = max(store.PreferredPartSize, cfg.MinPartSize)
	}
	if cfg.TempDir != "" {
		if err := os.MkdirAll(cfg.TempDir, 0o700); err != nil {
			return nil, fmt.Errorf("upload spool temp dir %s: %w", cfg.TempDir, err)
		}
	}
	return &S3{store: store, pool: pool, locker: NewLocker(pool, DefaultLockLease, log)}, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Locker implements Spool: in PostgreSQL, shared by the replicas.
func (s *S3) Locker() handler.Locker { return s.locker }

// Close implements Spool.
func (s *S3) Close() { s.locker.Close() }

// NewUpload implements handler.DataStore: the multipart upload is created
// and its key recorded under the upload's own id.
func (s *S3) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	id := info.ID
	up, err := s.store.NewUpload(ctx, info)
	if err != nil {
		return nil, err
	}
	stored, err := up.GetInfo(ctx)
	if err != nil {
		return nil, err
	}
	if err := db.New(s.pool).InsertUploadSpool(ctx, db.InsertUploadSpoolParams{UploadID: id, SpoolID: stored.ID}); err != nil {
		return nil, errors.Join(fmt.Errorf("recording the spool of upload %s: %w", id, err), s.store.AsTerminatableUpload(up).Terminate(ctx))
	}
	return &s3Upload{Upload: up, id: id, pool: s.pool}, nil
}

// GetUpload implements handler.DataStore.
func (s *S3) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	spoolID, err := db.New(s.pool).UploadSpoolID(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, handler.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading the spool of upload %s: %w", id, err)
	}
	up, err := s.store.GetUpload(ctx, spoolID)
	if err != nil {
		return nil, err
	}
	return &s3Upload{Upload: up, id: id, pool: s.pool}, nil
}

// AsTerminatableUpload implements handler.TerminaterDataStore.
func (s *S3) AsTerminatableUpload(up handler.Upload) handler.TerminatableUpload {
	return terminatable{s: s, up: up.(*s3Upload)}
}

type terminatable struct {
	s  *S3
	up *s3Upload
}

func (t terminatable) Terminate(ctx context.Context) error { return t.s.remove(ctx, t.up) }

// Open implements Spool.
func (s *S3) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	up, err := s.GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return up.GetReader(ctx)
}

// Remove implements Spool.
func (s *S3) Remove(ctx context.Context, id string) error {
	up, err := s.GetUpload(ctx, id)
	if errors.Is(err, handler.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.remove(ctx, up.(*s3Upload))
}

// remove deletes the objects (or aborts the multipart upload), then forgets
// the key: a failure leaves the record, so the janitor tries again.
func (s *S3) remove(ctx context.Context, up *s3Upload) error {
	if err := s.store.AsTerminatableUpload(up.Upload).Terminate(ctx); err != nil {
		return fmt.Errorf("removing the spool of upload %s: %w", up.id, err)
	}
	return db.New(s.pool).DeleteUploadSpool(ctx, up.id)
}

// Stale implements Spool: an upload's idle clock is the last chunk it
// received (on any replica).
func (s *S3) Stale(ctx context.Context, before time.Time) ([]string, error) {
	ids, err := db.New(s.pool).StaleUploadSpools(ctx, before)
	if err != nil {
		return nil, fmt.Errorf("listing idle uploads: %w", err)
	}
	return ids, nil
}

// s3Upload is an upload of the bucket under its threadbox id: GetInfo
// answers that id (the store's own embeds the multipart upload), and every
// chunk it receives resets its idle clock.
type s3Upload struct {
	handler.Upload
	id   string
	pool *pgxpool.Pool
}

func (u *s3Upload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	info, err := u.Upload.GetInfo(ctx)
	info.ID = u.id
	return info, err
}

func (u *s3Upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	n, err := u.Upload.WriteChunk(ctx, offset, src)
	if terr := db.New(u.pool).TouchUploadSpool(context.WithoutCancel(ctx), u.id); terr != nil && err == nil {
		err = fmt.Errorf("recording progress of upload %s: %w", u.id, terr)
	}
	return n, err
}
