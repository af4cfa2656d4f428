package command

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestCut(t *testing.T) {
	for _, c := range []struct {
		in    string
		limit int
		want  string
		trunc bool
	}{
		{"hello", 5, "hello", false},
		{"hello", 4, "hell", true},
		{"héllo", 2, "h", true},       // é is two bytes: not split
		{"héllo", 3, "hé", true},      // ends right after é
		{"a€b", 3, "a", true},         // € is three bytes
		{"\xff\xfe", 1, "\xff", true}, // not UTF-8: cut where asked
		{"", 0, "", false},
	} {
		got := cut([]byte(c.in), c.limit)
		if got.Text != c.want || got.Truncated != c.trunc {
			t.Errorf("cut(%q, %d) = %q %v, want %q %v", c.in, c.limit, got.Text, got.Truncated, c.want, c.trunc)
		}
	}
}

// chunks is a reader that returns its pieces one Read at a time, then err.
type chunks struct {
	pieces []string
	err    error
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.pieces) == 0 {
		return 0, c.err
	}
	n := copy(p, c.pieces[0])
	c.pieces[0] = c.pieces[0][n:]
	if c.pieces[0] == "" {
		c.pieces = c.pieces[1:]
	}
	return n, nil
}

func collect(limit int) (*outWriter, *[]string) {
	var got []string
	return &outWriter{limit: limit, emit: func(s string) error { got = append(got, s); return nil }}, &got
}

func TestOutWriterKeepsSequencesWhole(t *testing.T) {
	w, got := collect(100)
	if err := w.from(&chunks{pieces: []string{"a\xc3", "\xa9b\xe2\x82", "\xac"}, err: io.EOF}); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(*got, "|") != "a|éb|€" || w.Truncated {
		t.Fatalf("pieces %q truncated %v", *got, w.Truncated)
	}
}

func TestOutWriterLimit(t *testing.T) {
	w, got := collect(4)
	if err := w.from(&chunks{pieces: []string{"ab", "cé", "more"}, err: io.EOF}); err != nil {
		t.Fatal(err)
	}
	_ = w.flush()
	if strings.Join(*got, "") != "abc" || !w.Truncated {
		t.Fatalf("pieces %q truncated %v", *got, w.Truncated)
	}
}

func TestOutWriterResumesWhereItBrokeOff(t *testing.T) {
	w, got := collect(100)
	broken := errors.New("stream broke")
	if err := w.from(&chunks{pieces: []string{"one\n", "tw"}, err: broken}); !errors.Is(err, broken) {
		t.Fatalf("first stream: %v", err)
	}
	// A new stream starts again from the first byte.
	if err := w.from(&chunks{pieces: []string{"one\ntwo\n", "three\n"}, err: io.EOF}); err != nil {
		t.Fatal(err)
	}
	_ = w.flush()
	if strings.Join(*got, "") != "one\ntwo\nthree\n" {
		t.Fatalf("output %q", strings.Join(*got, ""))
	}
}

func TestOutWriterPassesBytesThatAreNotUTF8(t *testing.T) {
	w, got := collect(100)
	_ = w.from(&chunks{pieces: []string{"x\xff", "\xc3"}, err: io.EOF})
	_ = w.flush()
	if strings.Join(*got, "") != "x\xff\xc3" {
		t.Fatalf("output %q", strings.Join(*got, ""))
	}
}
