// Package skills turns an uploaded skill archive (.zip or .tar.gz) into a
// checked, in-memory file set and its SKILL.md manifest, before anything runs.
//
// Everything here is a pure function over bytes: the API calls it to reject a
// bad upload with a 400/413 before it is stored, and the activities call it
// again on the stored archive to get the files they upload into a sandbox, so
// both sides agree on exactly which files a skill has. The checks are the
// ones an archive extractor is usually attacked through: path traversal,
// absolute paths, links that leave the skill folder, hard links, device
// files, duplicate entries and decompression bombs (size and count caps are
// enforced on the bytes actually decompressed, never on header claims).
package skills
