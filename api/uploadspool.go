package api

import (
	"fmt"

	"github.com/threadbox/threadbox/uploadspool"
)

// uploadSpool is where tus uploads wait: the S3 bucket every replica reaches
// when THREADBOX_UPLOAD_S3_BUCKET is set, else (nil) the local
// THREADBOX_UPLOAD_DIR, which needs no other service but ties an upload to
// the replica it started on.
func uploadSpool(d Deps) (uploadspool.Spool, error) {
	c := d.Config
	if c.UploadS3Bucket == "" {
		return nil, nil
	}
	s, err := uploadspool.NewS3(uploadspool.S3Config{
		Endpoint: c.UploadS3Endpoint, Region: c.UploadS3Region, Bucket: c.UploadS3Bucket, Prefix: c.UploadS3Prefix,
		AccessKey: c.UploadS3AccessKey, SecretKey: c.UploadS3SecretKey,
		// Parts are assembled on local disk before they are sent (a few
		// MiB per upload in flight), in temporary files removed at once.
		TempDir: c.UploadDir,
	}, d.Pool, d.Logger.With("component", "uploads"))
	if err != nil {
		return nil, fmt.Errorf("THREADBOX_UPLOAD_S3_*: %w", err)
	}
	return s, nil
}
