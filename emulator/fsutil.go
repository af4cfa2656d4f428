package emulator

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// rootSkeleton are the directories every sandbox root has; the system ones
// are mount points for bubblewrap's read-only binds.
func rootSkeleton() []string { return []string{"home/daytona", "tmp", "proc", "dev", "usr", "etc"} }

// seedRoot creates a sandbox root from a snapshot template (if any) and the skeleton.
func seedRoot(root, template string) error {
	if template != "" {
		if _, err := os.Stat(template); err == nil {
			if err := copyTree(template, root); err != nil {
				return fmt.Errorf("copy snapshot template: %w", err)
			}
		}
	}
	for _, d := range rootSkeleton() {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return fmt.Errorf("chmod tmp: %w", err)
	}
	return nil
}

// copyTree copies a directory tree; symlinks are copied as links (never
// followed), special files are skipped. The source is read through an
// os.Root: it may be a sandbox whose processes are still running, and a
// directory swapped for a symlink mid-walk must not pull host files in.
func copyTree(src, dst string) error {
	root, err := os.OpenRoot(src)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := root.Readlink(p)
			if err != nil {
				return fmt.Errorf("readlink: %w", err)
			}
			_ = os.Remove(target)
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			in, err := root.Open(p)
			if err != nil {
				return fmt.Errorf("open source: %w", err)
			}
			defer in.Close()
			return copyFile(in, target, info.Mode().Perm())
		}
		return nil
	})
}

// copyFile streams one opened file to dst.
func copyFile(in io.Reader, dst string, perm fs.FileMode) (err error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("create destination: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close destination: %w", cerr)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}

// removeContents empties a directory tree's top directory but keeps it (for
// roots and mount points).
func removeContents(fsys *os.Root) error {
	entries, err := readDir(resolved{fs: fsys, rel: "."})
	if err != nil {
		return fmt.Errorf("read dir: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if err := fsys.RemoveAll(e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// copyAcross copies src (a file, a link or a whole directory) to dst when a
// rename cannot cross their filesystems. Both sides go through their trees'
// handles: symlinks are copied as links, never followed, and special files
// are skipped.
func copyAcross(src, dst resolved) error {
	fi, err := src.fs.Lstat(src.rel)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := src.fs.Readlink(src.rel)
		if err != nil {
			return err
		}
		return dst.fs.Symlink(target, dst.rel)
	case fi.IsDir():
		if err := dst.fs.Mkdir(dst.rel, fi.Mode().Perm()|0o700); err != nil {
			return err
		}
		entries, err := readDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			child := func(r resolved) resolved {
				return resolved{sandbox: r.sandbox + "/" + e.Name(), fs: r.fs, rel: r.rel + "/" + e.Name()}
			}
			if err := copyAcross(child(src), child(dst)); err != nil {
				return err
			}
		}
		return nil
	case fi.Mode().IsRegular():
		in, err := src.fs.Open(src.rel)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := dst.fs.OpenFile(dst.rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return fmt.Errorf("copy: %w", err)
		}
		return out.Close()
	}
	return nil
}

// readDir lists a directory through its tree's handle.
func readDir(r resolved) ([]os.DirEntry, error) {
	dir, err := r.open()
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return dir.ReadDir(-1)
}
