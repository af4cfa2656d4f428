package sandboxfs_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/internal/shell"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/sandboxfs"
)

// Every failure about a client's file is explained by its kind, found from
// the status and a stat of the paths involved — never from Daytona's error
// text, which the real daemon leaves empty.
func TestKindsOfFileErrors(t *testing.T) {
	sb := testenv.NewSandbox(t)
	ctx := context.Background()
	f := sandboxfs.FS{TB: sb.Toolbox, Root: "/home/daytona"}
	require.NoError(t, f.Upload(ctx, "/file", strings.NewReader("x")))
	require.NoError(t, f.Upload(ctx, "/dir/inner", strings.NewReader("y")))
	require.NoError(t, f.Mkdir(ctx, "/empty"))

	kind := func(err error) error {
		var fe *sandboxfs.Error
		require.True(t, errors.As(err, &fe), "want a *sandboxfs.Error, got %v", err)
		return fe.Kind
	}
	_, err := f.Stat(ctx, "/missing")
	require.ErrorIs(t, kind(err), fs.ErrNotExist)
	_, err = f.List(ctx, "/file")
	require.ErrorIs(t, kind(err), sandboxfs.ErrNotDir)
	_, err = f.Download(ctx, "/dir", 0, -1)
	require.ErrorIs(t, kind(err), sandboxfs.ErrIsDir)
	require.ErrorIs(t, kind(f.Upload(ctx, "/dir", strings.NewReader("z"))), sandboxfs.ErrIsDir)
	require.ErrorIs(t, kind(f.Upload(ctx, "/file/below", strings.NewReader("z"))), sandboxfs.ErrNotDir)
	require.ErrorIs(t, kind(f.Delete(ctx, "/dir", false)), sandboxfs.ErrIsDir)
	require.ErrorIs(t, kind(f.Delete(ctx, "/missing", false)), fs.ErrNotExist)
	require.ErrorIs(t, kind(f.Mkdir(ctx, "/file")), fs.ErrExist)

	err = f.Move(ctx, "/file", "/dir/inner")
	require.ErrorIs(t, kind(err), fs.ErrExist)
	var fe *sandboxfs.Error
	require.True(t, errors.As(err, &fe))
	require.Equal(t, "/dir/inner", fe.Path, "the destination is what exists")
	require.ErrorIs(t, kind(f.Move(ctx, "/missing", "/x")), fs.ErrNotExist)

	require.ErrorIs(t, kind(f.RemoveEmptyDir(ctx, "/dir")), sandboxfs.ErrNotEmpty)
	require.ErrorIs(t, kind(f.RemoveEmptyDir(ctx, "/file")), sandboxfs.ErrNotDir)
	require.ErrorIs(t, kind(f.RemoveEmptyDir(ctx, "/missing")), fs.ErrNotExist)
	require.NoError(t, f.RemoveEmptyDir(ctx, "/empty"))
	_, err = f.Stat(ctx, "/empty")
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = f.Stat(ctx, "/dir/inner")
	require.NoError(t, err, "a refused removal touched nothing")
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"a b": `'a b'`, "it's": `'it'\''s'`, "": `''`, "$(x)": `'$(x)'`} {
		require.Equal(t, want, shell.Quote(in))
	}
}
