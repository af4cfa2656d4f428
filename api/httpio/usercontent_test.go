package httpio_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api/httpio"
)

// Only passive types are shown inline; every user file is nosniff and
// sandboxed whatever its type.
func TestUserContentHeaders(t *testing.T) {
	for name, want := range map[string]string{
		"/a/page.html":   `attachment; filename=page.html`,
		"/a/page.HTM":    `attachment; filename=page.HTM`,
		"/a/x.xhtml":     `attachment; filename=x.xhtml`,
		"/a/logo.svg":    `attachment; filename=logo.svg`,
		"/a/feed.xml":    `attachment; filename=feed.xml`,
		"/a/app.js":      `attachment; filename=app.js`,
		"/a/app.mjs":     `attachment; filename=app.mjs`,
		"/a/style.css":   `attachment; filename=style.css`,
		"/a/doc.pdf":     `attachment; filename=doc.pdf`,
		"/a/Makefile":    `attachment; filename=Makefile`,
		"/a/data.bin":    `attachment; filename=data.bin`,
		"/a/naïve x.htm": `attachment; filename*=utf-8''na%C3%AFve%20x.htm`,
		"/a/notes.txt":   ``,
		"/a/data.json":   ``,
		"/a/photo.png":   ``,
		"/a/photo.jpg":   ``,
		"/a/clip.mp4":    ``,
		"/a/song.mp3":    ``,
	} {
		h := http.Header{}
		httpio.UserContentHeaders(h, name)
		require.Equal(t, want, h.Get("Content-Disposition"), name)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), name)
		require.Equal(t, "sandbox", h.Get("Content-Security-Policy"), name)
		require.Equal(t, httpio.ContentType(name), h.Get("Content-Type"), name)
	}
}
