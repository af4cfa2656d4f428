package sessionlog

import (
	"bytes"
	"testing"
)

const marked = "\x01\x01\x01out one\n\x02\x02\x02err one\n\x01\x01\x01out two\n"

func TestStripAndDemux(t *testing.T) {
	if got := string(Strip([]byte(marked))); got != "out one\nerr one\nout two\n" {
		t.Fatalf("strip: %q", got)
	}
	so, se := Demux([]byte(marked))
	if string(so) != "out one\nout two\n" || string(se) != "err one\n" {
		t.Fatalf("demux: %q %q", so, se)
	}
	// A lone 0x01 inside a line is data, not a marker.
	so, _ = Demux([]byte("\x01\x01\x01a\x01b\n"))
	if string(so) != "a\x01b\n" {
		t.Fatalf("demux keeps a lone 0x01: %q", so)
	}
}

// Every way of cutting the log into chunks gives the same stripped text,
// including cuts inside a marker.
func TestStripperChunks(t *testing.T) {
	want := Strip([]byte(marked))
	for size := 1; size <= len(marked); size++ {
		var s Stripper
		var got bytes.Buffer
		for i := 0; i < len(marked); i += size {
			got.Write(s.Next([]byte(marked[i:min(i+size, len(marked))])))
		}
		got.Write(s.Flush())
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("chunks of %d: %q", size, got.String())
		}
	}
	var s Stripper
	out := append(s.Next([]byte("tail\x01\x01")), s.Flush()...)
	if string(out) != "tail\x01\x01" {
		t.Fatalf("an unfinished marker at the end is data: %q", out)
	}
}
