// Package skilltest builds skill archives for tests, including malformed and
// malicious ones (traversal, links, devices, bombs) that ordinary archivers
// refuse to produce. It is imported only by tests.
package skilltest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"time"
)

// Kind is the type of an archive member.
type Kind int

// Member kinds.
const (
	Regular Kind = iota
	Dir
	Symlink
	Hardlink
	CharDevice
	Fifo
)

// Entry is one archive member as written, with no checks at all.
type Entry struct {
	Name string
	Body string
	Kind Kind
	Link string      // symlink or hard link target
	Mode fs.FileMode // permission bits; 0 means 0644 (0755 for dirs)
}

// File is a regular file entry.
func File(name, body string) Entry { return Entry{Name: name, Body: body} }

// SkillMD returns a SKILL.md with the given front matter lines.
func SkillMD(frontMatter string) string {
	return "---\n" + frontMatter + "\n---\n# Instructions\nUse this skill wisely.\n"
}

// Valid returns the entries of a small valid skill named name whose check
// command (if any) is check.
func Valid(name, check string) []Entry {
	fm := "name: " + name + "\ndescription: a test skill"
	if check != "" {
		fm += "\ncheck: " + check + "\ncheck_timeout: 30"
	}
	return []Entry{
		File("SKILL.md", SkillMD(fm)),
		{Name: "scripts/run.sh", Body: "#!/bin/sh\necho run\n", Mode: 0o755},
	}
}

func (e Entry) mode() fs.FileMode {
	if e.Mode != 0 {
		return e.Mode
	}
	if e.Kind == Dir {
		return 0o755
	}
	return 0o644
}

// TarGz writes entries as a gzip-compressed tar.
func TarGz(entries ...Entry) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: int64(e.mode()), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch e.Kind {
		case Regular:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Body))
		case Dir:
			h.Typeflag = tar.TypeDir
		case Symlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		case Hardlink:
			h.Typeflag, h.Linkname = tar.TypeLink, e.Link
		case CharDevice:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, 1, 3
		case Fifo:
			h.Typeflag = tar.TypeFifo
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if e.Kind == Regular {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				panic(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	if err := gz.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Zip writes entries as a zip archive (symlinks as zip symlink members;
// devices with the device mode bits; hard links do not exist in zip and are
// written as regular files).
func Zip(entries ...Entry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.Name, Method: zip.Deflate}
		body := e.Body
		switch e.Kind {
		case Dir:
			h.SetMode(fs.ModeDir | e.mode())
			if len(h.Name) == 0 || h.Name[len(h.Name)-1] != '/' {
				h.Name += "/"
			}
		case Symlink:
			h.SetMode(fs.ModeSymlink | 0o777)
			body = e.Link
		case CharDevice:
			h.SetMode(fs.ModeDevice | fs.ModeCharDevice | 0o644)
		case Fifo:
			h.SetMode(fs.ModeNamedPipe | 0o644)
		default:
			h.SetMode(e.mode())
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			panic(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}
