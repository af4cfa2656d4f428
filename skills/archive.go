package skills

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Format is an archive container format.
type Format string

// The accepted archive formats.
const (
	FormatZip   Format = "zip"
	FormatTarGz Format = "tar.gz"
)

// File is one regular file of a skill, with a path relative to the skill
// folder (slash-separated, clean, never escaping it).
type File struct {
	Path       string
	Data       []byte
	Executable bool
}

// Bundle is a checked skill: its manifest and every file, sorted by path.
// Directories are implied by the file paths; links inside the folder have been
// replaced by copies of their targets, so uploading Files reproduces the skill
// without ever creating a link in a sandbox.
type Bundle struct {
	Format     Format
	Manifest   Manifest
	Files      []File
	TotalBytes int64
}

// ManifestFile is the file every skill must have at its root.
const ManifestFile = "SKILL.md"

// DetectFormat recognises a zip or gzip stream by its magic bytes; the file
// name an uploader chose is not trusted.
func DetectFormat(data []byte) (Format, error) {
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		return FormatZip, nil
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		return FormatTarGz, nil
	}
	return "", invalid("unsupported_archive", "the file is neither a .zip nor a .tar.gz archive")
}

type entryKind int

const (
	kindFile entryKind = iota
	kindDir
	kindSymlink
	kindHardlink
)

// entry is an archive member after its name was checked.
type entry struct {
	name string
	kind entryKind
	data []byte
	exec bool
	link string
}

// reader accumulates entries while enforcing the caps.
type reader struct {
	lim     Limits
	entries []entry
	seen    map[string]bool
	total   int64
}

// Parse checks an archive and its SKILL.md and returns the skill's files. Any
// rejection is an *Error (errors.Is(err, ErrTooLarge) for cap violations).
func Parse(data []byte, lim Limits) (*Bundle, error) {
	if int64(len(data)) > lim.MaxArchiveBytes {
		return nil, tooLarge("the archive is %d bytes; the limit is %d", len(data), lim.MaxArchiveBytes)
	}
	format, err := DetectFormat(data)
	if err != nil {
		return nil, err
	}
	r := &reader{lim: lim, seen: map[string]bool{}}
	switch format {
	case FormatZip:
		err = r.readZip(data)
	default:
		err = r.readTarGz(data)
	}
	if err != nil {
		return nil, err
	}
	r.stripWrapper()
	files, err := r.resolve()
	if err != nil {
		return nil, err
	}
	b := &Bundle{Format: format, Files: files}
	var manifest []byte
	for _, f := range files {
		b.TotalBytes += int64(len(f.Data))
		if f.Path == ManifestFile {
			manifest = f.Data
		}
	}
	if b.TotalBytes > lim.MaxTotalBytes {
		return nil, tooLarge("the skill expands to more than %d bytes", lim.MaxTotalBytes)
	}
	if manifest == nil {
		return nil, invalid("missing_manifest", "the archive has no %s at the root of the skill folder", ManifestFile)
	}
	m, err := ParseManifest(manifest)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		switch f.Path {
		case "requirements.txt":
			m.PythonRequirements = true
		case "package.json":
			m.NodePackage = true
		}
	}
	b.Manifest = m
	return b, nil
}

// add records one member after checking its name, type and the count cap.
func (r *reader) add(raw string, e entry) error {
	if len(r.entries) >= r.lim.MaxFiles {
		return tooLarge("the archive has more than %d entries", r.lim.MaxFiles)
	}
	name, skip, err := cleanName(raw, r.lim)
	if err != nil {
		return err
	}
	if skip {
		return nil
	}
	if r.seen[name] {
		return invalid("duplicate_entry", "%q appears more than once in the archive", name)
	}
	r.seen[name] = true
	e.name = name
	r.entries = append(r.entries, e)
	return nil
}

// readBody reads one member's content under the per-file and total caps,
// counting the bytes the decompressor really produced.
func (r *reader) readBody(name string, rd io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(rd, r.lim.MaxFileBytes+1))
	if err != nil {
		return nil, invalid("corrupt_archive", "reading %q: %v", name, err)
	}
	if int64(len(data)) > r.lim.MaxFileBytes {
		return nil, tooLarge("%q is larger than %d bytes", name, r.lim.MaxFileBytes)
	}
	r.total += int64(len(data))
	if r.total > r.lim.MaxTotalBytes {
		return nil, tooLarge("the skill expands to more than %d bytes", r.lim.MaxTotalBytes)
	}
	return data, nil
}

func (r *reader) readZip(data []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return invalid("corrupt_archive", "not a readable zip archive: %v", err)
	}
	if len(zr.File) > r.lim.MaxFiles {
		return tooLarge("the archive has %d entries; the limit is %d", len(zr.File), r.lim.MaxFiles)
	}
	for _, f := range zr.File {
		mode := f.Mode()
		var e entry
		switch {
		case mode&fs.ModeSymlink != 0:
			e.kind = kindSymlink
			target, err := r.zipBody(f)
			if err != nil {
				return err
			}
			e.link = string(target)
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			e.kind = kindDir
		case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
			return invalid("special_file", "%q is a device, pipe or socket; only regular files, folders and links are allowed", f.Name)
		default:
			body, err := r.zipBody(f)
			if err != nil {
				return err
			}
			e.kind, e.data, e.exec = kindFile, body, mode&0o111 != 0
		}
		if err := r.add(f.Name, e); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) zipBody(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, invalid("corrupt_archive", "opening %q: %v", f.Name, err)
	}
	defer rc.Close()
	return r.readBody(f.Name, rc)
}

// countingReader fails once more than max bytes were read, bounding the
// decompressed stream as a whole (tar headers and padding included).
type countingReader struct {
	r   io.Reader
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return n, tooLarge("the archive expands to more than %d bytes", c.max)
	}
	return n, err
}

func (r *reader) readTarGz(data []byte) error {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return invalid("corrupt_archive", "not a readable gzip stream: %v", err)
	}
	defer gz.Close()
	// Headers and block padding cost at most a few KiB per entry.
	budget := r.lim.MaxTotalBytes + int64(r.lim.MaxFiles+4)*4096
	tr := tar.NewReader(&countingReader{r: gz, max: budget})
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var se *Error
			if errors.As(err, &se) {
				return se
			}
			return invalid("corrupt_archive", "not a readable tar archive: %v", err)
		}
		var e entry
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // TypeRegA is still written by old tools.
			body, err := r.readBody(h.Name, tr)
			if err != nil {
				return err
			}
			e.kind, e.data, e.exec = kindFile, body, h.Mode&0o111 != 0
		case tar.TypeDir:
			e.kind = kindDir
		case tar.TypeSymlink:
			e.kind, e.link = kindSymlink, h.Linkname
		case tar.TypeLink:
			e.kind, e.link = kindHardlink, h.Linkname
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return invalid("special_file", "%q is a device or pipe; only regular files, folders and links are allowed", h.Name)
		default:
			return invalid("unsupported_entry", "%q has unsupported tar type %q", h.Name, string(h.Typeflag))
		}
		if err := r.add(h.Name, e); err != nil {
			return err
		}
	}
}

// cleanName checks an archive path and returns it clean and relative. skip is
// true for members that carry nothing (the root folder itself, macOS
// resource-fork folders).
func cleanName(raw string, lim Limits) (name string, skip bool, err error) {
	if raw == "" {
		return "", false, invalid("bad_path", "an entry has an empty name")
	}
	for _, c := range raw {
		if c == 0 || c < 0x20 || c == 0x7f {
			return "", false, invalid("bad_path", "%q contains a control character", raw)
		}
	}
	if strings.Contains(raw, `\`) {
		return "", false, invalid("bad_path", "%q contains a backslash", raw)
	}
	if strings.HasPrefix(raw, "/") || (len(raw) >= 2 && raw[1] == ':' && (raw[0]|0x20) >= 'a' && (raw[0]|0x20) <= 'z') {
		return "", false, invalid("absolute_path", "%q is an absolute path", raw)
	}
	var parts []string
	for _, p := range strings.Split(raw, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", false, invalid("path_traversal", "%q leaves the skill folder", raw)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "", true, nil
	}
	if parts[0] == "__MACOSX" {
		return "", true, nil
	}
	name = strings.Join(parts, "/")
	if len(name) > lim.MaxPathLen {
		return "", false, invalid("bad_path", "%q is longer than %d characters", name, lim.MaxPathLen)
	}
	if len(parts) > lim.MaxDepth {
		return "", false, invalid("bad_path", "%q is nested deeper than %d folders", name, lim.MaxDepth)
	}
	return name, false, nil
}

// stripWrapper removes a single top-level folder when the skill was archived
// as "myskill/SKILL.md, myskill/..." rather than from inside the folder.
func (r *reader) stripWrapper() {
	if r.seen[ManifestFile] || len(r.entries) == 0 {
		return
	}
	top, _, _ := strings.Cut(r.entries[0].name, "/")
	for _, e := range r.entries {
		if e.name != top && !strings.HasPrefix(e.name, top+"/") {
			return
		}
		if e.name == top && e.kind != kindDir {
			return
		}
	}
	if !r.seen[top+"/"+ManifestFile] {
		return
	}
	out := r.entries[:0]
	for _, e := range r.entries {
		if e.name == top {
			continue
		}
		e.name = strings.TrimPrefix(e.name, top+"/")
		if e.kind == kindHardlink {
			e.link = strings.TrimPrefix(path.Clean(e.link), top+"/")
		}
		out = append(out, e)
	}
	r.entries = out
	r.seen = map[string]bool{}
	for _, e := range out {
		r.seen[e.name] = true
	}
}

// maxLinkHops bounds symlink chains (and so loops).
const maxLinkHops = 8

// resolve turns links into copies of the regular files they point at and
// checks that no file is also used as a folder.
func (r *reader) resolve() ([]File, error) {
	byName := make(map[string]*entry, len(r.entries))
	for i := range r.entries {
		byName[r.entries[i].name] = &r.entries[i]
	}
	var files []File
	for _, e := range r.entries {
		switch e.kind {
		case kindDir:
			continue
		case kindFile:
			files = append(files, File{Path: e.name, Data: e.data, Executable: e.exec})
		case kindSymlink, kindHardlink:
			target, err := r.follow(byName, e)
			if err != nil {
				return nil, err
			}
			r.total += int64(len(target.data))
			if r.total > r.lim.MaxTotalBytes {
				return nil, tooLarge("the skill expands to more than %d bytes", r.lim.MaxTotalBytes)
			}
			files = append(files, File{Path: e.name, Data: target.data, Executable: target.exec})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	isFile := make(map[string]bool, len(files))
	for _, f := range files {
		isFile[f.Path] = true
	}
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if isFile[dir] {
				return nil, invalid("path_conflict", "%q is a file but %q uses it as a folder", dir, f.Path)
			}
		}
	}
	return files, nil
}

// follow resolves a link entry to the regular file it finally names.
func (r *reader) follow(byName map[string]*entry, e entry) (*entry, error) {
	cur := e
	for hop := 0; hop < maxLinkHops; hop++ {
		var target string
		switch cur.kind {
		case kindFile:
			return byName[cur.name], nil
		case kindHardlink:
			// Hard link names are archive paths, not relative to the link.
			if cur.link == "" || strings.HasPrefix(cur.link, "/") {
				return nil, invalid("link_outside", "hard link %q points outside the skill folder (%q)", e.name, cur.link)
			}
			target = path.Clean(cur.link)
		case kindSymlink:
			if cur.link == "" || strings.HasPrefix(cur.link, "/") || strings.ContainsRune(cur.link, 0) {
				return nil, invalid("link_outside", "symlink %q points outside the skill folder (%q)", e.name, cur.link)
			}
			target = path.Clean(path.Join(path.Dir(cur.name), cur.link))
		default:
			return nil, invalid("unsupported_link", "link %q points at a folder; only links to files are allowed", e.name)
		}
		if target == ".." || strings.HasPrefix(target, "../") || target == "." {
			return nil, invalid("link_outside", "link %q points outside the skill folder (%q)", e.name, cur.link)
		}
		next, ok := byName[target]
		if !ok {
			return nil, invalid("dangling_link", "link %q points at %q, which is not in the archive", e.name, target)
		}
		if next.kind == kindDir {
			return nil, invalid("unsupported_link", "link %q points at a folder; only links to files are allowed", e.name)
		}
		cur = *next
	}
	return nil, invalid("link_loop", "link %q has more than %d hops", e.name, maxLinkHops)
}
