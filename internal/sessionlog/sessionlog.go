// Package sessionlog reads the log format of Daytona's session commands:
// the daemon's labelers append every line a command prints to its log,
// prefixed with 0x01 0x01 0x01 when it came from stdout and 0x02 0x02 0x02
// when it came from stderr (apps/daemon/pkg/session). The emulator writes
// and serves that format and the gateway reads it, so both share this code.
package sessionlog

import "bytes"

// The stream markers.
var (
	StdoutMarker = []byte{1, 1, 1}
	StderrMarker = []byte{2, 2, 2}
)

// Strip removes the markers from a whole log: what the command printed on
// both streams, in the order the labelers wrote it.
func Strip(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, StdoutMarker, nil), StderrMarker, nil)
}

// Demux splits a log into what the command printed on stdout and on stderr.
// Bytes before the first marker belong to neither.
func Demux(b []byte) (stdout, stderr []byte) {
	var cur *[]byte
	for len(b) > 0 {
		switch {
		case bytes.HasPrefix(b, StdoutMarker):
			cur, b = &stdout, b[len(StdoutMarker):]
			continue
		case bytes.HasPrefix(b, StderrMarker):
			cur, b = &stderr, b[len(StderrMarker):]
			continue
		}
		next := len(b)
		if i := indexMarker(b[1:]); i >= 0 {
			next = i + 1
		}
		if cur != nil {
			*cur = append(*cur, b[:next]...)
		}
		b = b[next:]
	}
	return stdout, stderr
}

func indexMarker(b []byte) int {
	i, j := bytes.Index(b, StdoutMarker), bytes.Index(b, StderrMarker)
	switch {
	case i < 0:
		return j
	case j < 0:
		return i
	}
	return min(i, j)
}

// Stripper removes the markers from a log that arrives in chunks (a
// followed log), where a marker may be split between two chunks.
type Stripper struct {
	pending []byte
}

// Next returns chunk without markers; up to two trailing bytes that may
// start a marker are held back for the next call.
func (s *Stripper) Next(chunk []byte) []byte {
	b := Strip(append(s.pending, chunk...))
	keep := 0
	for k := min(len(StdoutMarker)-1, len(b)); k > 0; k-- {
		tail := b[len(b)-k:]
		if bytes.HasPrefix(StdoutMarker, tail) || bytes.HasPrefix(StderrMarker, tail) {
			keep = k
			break
		}
	}
	s.pending = append([]byte(nil), b[len(b)-keep:]...)
	return b[:len(b)-keep]
}

// Flush returns what Next held back, once the log has ended: bytes that
// never became a marker are output.
func (s *Stripper) Flush() []byte {
	b := s.pending
	s.pending = nil
	return b
}
