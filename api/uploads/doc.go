// Package uploads accepts tus 1.0 resumable uploads into users' volumes,
// through tusd v2 embedded in the API: bytes wait in a spool (package
// uploadspool: local disk under Config.Dir, or an S3 bucket every replica
// reaches, so an upload resumes across client and server restarts, and with
// S3 on any replica), and when the last byte arrives the file is pushed into the
// volume through the files sandbox before the final response, so a 204 means
// "stored". Each upload is recorded in the uploads table; a client that lost
// that response asks again with HEAD and sees Upload-Offset == Upload-Length.
//
// tusd knows nothing about users: the store wrapper checks the owner on every
// request (another user's upload is 404, as is any malformed id), the create
// hook validates the destination path and the quota, and a janitor removes
// spools nobody touched for SpoolTTL (tus has no expiration extension here,
// so the TTL is documented rather than advertised).
package uploads
