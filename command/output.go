package command

import (
	"io"
	"unicode/utf8"
)

// cut keeps at most limit bytes of b without splitting a UTF-8 sequence.
func cut(b []byte, limit int) Output {
	if len(b) <= limit {
		return Output{Text: string(b)}
	}
	return Output{Text: string(b[:runeStart(b, limit)]), Truncated: true}
}

// runeStart is where b[:n] must end so that it splits no UTF-8 sequence:
// before the sequence that byte n-1 belongs to when that sequence runs past
// n, else n. Bytes that are not UTF-8 are never held back.
func runeStart(b []byte, n int) int {
	for i := n - 1; i >= 0 && i > n-1-utf8.UTFMax; i-- {
		if !utf8.RuneStart(b[i]) {
			continue
		}
		if i+seqLen(b[i]) > n {
			return i
		}
		return n
	}
	return n
}

// seqLen is the length of the UTF-8 sequence a lead byte starts (1 for a
// byte that starts none).
func seqLen(c byte) int {
	switch {
	case c < 0xC0:
		return 1
	case c < 0xE0:
		return 2
	case c < 0xF0:
		return 3
	case c < 0xF8:
		return 4
	}
	return 1
}

// outWriter passes a followed command's output on in pieces that never
// split a UTF-8 sequence (each becomes a JSON string), and at most limit
// bytes in all; what comes after is dropped and Truncated says so. It keeps
// its place across follows that broke off and started again from the first
// byte.
type outWriter struct {
	emit  func(string) error
	limit int

	read      int64  // bytes read from the current stream
	consumed  int64  // bytes taken in over all streams
	passed    int    // bytes passed to emit
	carry     []byte // the start of a sequence split between reads
	Truncated bool
}

// from reads one stream of the command's output from its first byte,
// skipping what an earlier stream already delivered.
func (w *outWriter) from(r io.Reader) error {
	w.read = 0
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p := buf[:n]
			if skip := w.consumed - w.read; skip > 0 {
				p = p[min(int64(len(p)), skip):]
			}
			w.read += int64(n)
			if len(p) > 0 {
				w.consumed += int64(len(p))
				if werr := w.write(p); werr != nil {
					return werr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (w *outWriter) write(p []byte) error {
	if w.Truncated {
		return nil
	}
	b := append(w.carry, p...)
	w.carry = nil
	if room := w.limit - w.passed; len(b) > room {
		b = b[:runeStart(b, room)]
		w.Truncated = true
	} else if n := runeStart(b, len(b)); n < len(b) {
		w.carry = append([]byte(nil), b[n:]...)
		b = b[:n]
	}
	if len(b) == 0 {
		return nil
	}
	w.passed += len(b)
	return w.emit(string(b))
}

// flush passes on what was held back at the end of the output.
func (w *outWriter) flush() error {
	b := w.carry
	w.carry = nil
	if len(b) == 0 || w.Truncated {
		return nil
	}
	w.passed += len(b)
	return w.emit(string(b))
}
