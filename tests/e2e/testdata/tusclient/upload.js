// Drives tus-js-client against threadbox for api/files_tus_test.go.
//
//   node upload.js <endpoint> <api key> <local file> <volume path> <abortAfterBytes|0> [uploadUrl]
//
// With abortAfterBytes > 0 the upload is aborted (like a killed client) once
// at least that many bytes were sent, and the upload URL is printed as
// "URL <url>". With uploadUrl the upload resumes there (a restarted client).
// On success it prints "DONE <url>".
'use strict';
const fs = require('fs');
const tus = require('tus-js-client');

const [endpoint, key, file, dest, abortAfterArg, uploadUrl] = process.argv.slice(2);
const abortAfter = Number(abortAfterArg || 0);
const size = fs.statSync(file).size;

const upload = new tus.Upload(fs.readFileSync(file), {
  endpoint,
  uploadUrl: uploadUrl || null,
  uploadSize: size,
  chunkSize: 1024 * 1024,
  retryDelays: [],
  headers: { Authorization: 'Bearer ' + key },
  metadata: { path: dest, filename: dest.split('/').pop() },
  onProgress(sent) {
    if (abortAfter > 0 && sent >= abortAfter) {
      upload.abort(false).then(() => {
        console.log('URL ' + upload.url);
        process.exit(0);
      });
    }
  },
  onError(err) {
    console.error('ERROR ' + err);
    process.exit(2);
  },
  onSuccess() {
    console.log('DONE ' + upload.url);
  },
});
upload.start();
