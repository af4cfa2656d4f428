package daytona

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeExecResponse reads the toolbox's ExecuteResponse ({"exitCode": N, "result":
// "..."}) from r, keeping at most maxOutput bytes of the result (maxOutput <= 0: no
// limit). Daytona answers a command's whole combined output in one JSON string, so
// decoding it with encoding/json would hold all of it (twice) however much the caller
// wants: a `cat` of a large file must not cost the API server its memory. The rest of the
// string is read and dropped, and truncated says so.
func decodeExecResponse(r io.Reader, maxOutput int) (res ExecResult, truncated bool, err error) {
	d := &execDecoder{r: bufio.NewReaderSize(r, 64<<10), max: maxOutput}
	if err := d.expect('{'); err != nil {
		return ExecResult{}, false, err
	}
	sawResult := false
	for first := true; ; first = false {
		c, err := d.next()
		if err != nil {
			return ExecResult{}, false, err
		}
		if c == '}' && first {
			break
		}
		if !first {
			if c == '}' {
				break
			}
			if c != ',' {
				return ExecResult{}, false, fmt.Errorf("execute response: want ',' or '}', got %q", c)
			}
			if c, err = d.next(); err != nil {
				return ExecResult{}, false, err
			}
		}
		if c != '"' {
			return ExecResult{}, false, fmt.Errorf("execute response: want a key, got %q", c)
		}
		key, _, err := d.str(64)
		if err != nil {
			return ExecResult{}, false, err
		}
		if err := d.expect(':'); err != nil {
			return ExecResult{}, false, err
		}
		switch string(key) {
		case "result":
			if err := d.expect('"'); err != nil {
				return ExecResult{}, false, err
			}
			out, cut, err := d.str(d.max)
			if err != nil {
				return ExecResult{}, false, err
			}
			res.Output, truncated, sawResult = string(out), cut, true
		case "exitCode":
			n, err := d.number()
			if err != nil {
				return ExecResult{}, false, err
			}
			res.ExitCode = n
		default:
			if err := d.skipValue(0); err != nil {
				return ExecResult{}, false, err
			}
		}
	}
	if !sawResult {
		return ExecResult{}, false, errors.New("execute response: no result")
	}
	return res, truncated, nil
}

type execDecoder struct {
	r   *bufio.Reader
	max int
}

// next returns the next byte that is not JSON white space.
func (d *execDecoder) next() (byte, error) {
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("execute response: %w", noEOF(err))
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c, nil
	}
}

func (d *execDecoder) expect(want byte) error {
	c, err := d.next()
	if err != nil {
		return err
	}
	if c != want {
		return fmt.Errorf("execute response: want %q, got %q", want, c)
	}
	return nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// capped collects at most max bytes (max <= 0: all), whole runes only; cut reports that
// something was dropped. It allocates nothing beyond the kept bytes.
type capped struct {
	out []byte
	max int
	cut bool
}

func (c *capped) add(n int) bool {
	if c.cut || (c.max > 0 && len(c.out)+n > c.max) {
		c.cut = true
		return false
	}
	if len(c.out)+n > cap(c.out) {
		// Double (append grows large slices by 1.25x, which would allocate about five
		// times the kept output), never past the cap.
		size := max(2*cap(c.out), 512, len(c.out)+n)
		if c.max > 0 {
			size = min(size, c.max)
		}
		grown := make([]byte, len(c.out), size)
		copy(grown, c.out)
		c.out = grown
	}
	return true
}

func (c *capped) byte(b byte) {
	if c.add(1) {
		c.out = append(c.out, b)
	}
}

func (c *capped) rune(r rune) {
	n := utf8.RuneLen(r)
	if n < 0 {
		r, n = utf8.RuneError, 3
	}
	if c.add(n) {
		c.out = utf8.AppendRune(c.out, r)
	}
}

// str decodes the rest of a JSON string (after its opening quote), keeping at most max
// bytes (max <= 0: all) without splitting a UTF-8 sequence; cut reports dropped bytes.
func (d *execDecoder) str(max int) (out []byte, cut bool, err error) {
	c := capped{max: max}
	for {
		b, err := d.r.ReadByte()
		if err != nil {
			return nil, false, fmt.Errorf("execute response: %w", noEOF(err))
		}
		switch {
		case b == '"':
			return c.out, c.cut, nil
		case b == '\\':
			e, err := d.r.ReadByte()
			if err != nil {
				return nil, false, fmt.Errorf("execute response: %w", noEOF(err))
			}
			switch e {
			case '"', '\\', '/':
				c.byte(e)
			case 'b':
				c.byte('\b')
			case 'f':
				c.byte('\f')
			case 'n':
				c.byte('\n')
			case 'r':
				c.byte('\r')
			case 't':
				c.byte('\t')
			case 'u':
				r, err := d.hex4()
				if err != nil {
					return nil, false, err
				}
				if utf16.IsSurrogate(r) {
					r = d.lowSurrogate(r)
				}
				c.rune(r)
			default:
				return nil, false, fmt.Errorf("execute response: bad escape \\%c", e)
			}
		case b < 0x20:
			return nil, false, fmt.Errorf("execute response: control character in string")
		case b < utf8.RuneSelf:
			c.byte(b)
		default:
			// A multi-byte UTF-8 sequence is kept or dropped whole; invalid bytes become
			// U+FFFD, as encoding/json does.
			if err := d.r.UnreadByte(); err != nil {
				return nil, false, err
			}
			r, _, err := d.r.ReadRune()
			if err != nil {
				return nil, false, fmt.Errorf("execute response: %w", noEOF(err))
			}
			c.rune(r)
		}
	}
}

func (d *execDecoder) hex4() (rune, error) {
	var h [4]byte
	if _, err := io.ReadFull(d.r, h[:]); err != nil {
		return 0, fmt.Errorf("execute response: %w", noEOF(err))
	}
	n, err := strconv.ParseUint(string(h[:]), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("execute response: bad \\u escape %q", h[:])
	}
	return rune(n), nil
}

// lowSurrogate completes a UTF-16 surrogate pair started by hi, or yields U+FFFD when no
// valid low half follows (leaving what follows unread), as encoding/json does.
func (d *execDecoder) lowSurrogate(hi rune) rune {
	if next, err := d.r.Peek(6); err == nil && next[0] == '\\' && next[1] == 'u' {
		if n, err := strconv.ParseUint(string(next[2:6]), 16, 16); err == nil {
			if r := utf16.DecodeRune(hi, rune(n)); r != utf8.RuneError {
				_, _ = d.r.Discard(6)
				return r
			}
		}
	}
	return utf8.RuneError
}

// token reads a JSON number or literal (true, false, null).
func (d *execDecoder) token() ([]byte, error) {
	c, err := d.next()
	if err != nil {
		return nil, err
	}
	tok := []byte{c}
	for {
		b, err := d.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if !(b == '-' || b == '+' || b == '.' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b == 'E') {
			_ = d.r.UnreadByte()
			break
		}
		tok = append(tok, b)
		if len(tok) > 32 {
			return nil, errors.New("execute response: value too long")
		}
	}
	return tok, nil
}

// number reads a JSON number (exitCode); null reads as 0.
func (d *execDecoder) number() (int, error) {
	tok, err := d.token()
	if err != nil {
		return 0, err
	}
	if string(tok) == "null" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil {
		return 0, fmt.Errorf("execute response: exitCode %q: %w", tok, err)
	}
	return int(f), nil
}

// skipValue reads past one JSON value of a field threadbox does not use.
func (d *execDecoder) skipValue(depth int) error {
	if depth > 32 {
		return errors.New("execute response: nested too deep")
	}
	c, err := d.next()
	if err != nil {
		return err
	}
	switch c {
	case '"':
		_, _, err := d.str(1)
		return err
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		for first := true; ; first = false {
			p, err := d.next()
			if err != nil {
				return err
			}
			if p == end {
				return nil
			}
			if !first {
				if p != ',' {
					return fmt.Errorf("execute response: want ',' got %q", p)
				}
			} else if err := d.r.UnreadByte(); err != nil {
				return err
			}
			if c == '{' {
				if err := d.expect('"'); err != nil {
					return err
				}
				if _, _, err := d.str(1); err != nil {
					return err
				}
				if err := d.expect(':'); err != nil {
					return err
				}
			}
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
		}
	default:
		if err := d.r.UnreadByte(); err != nil {
			return err
		}
		tok, err := d.token()
		if err != nil {
			return err
		}
		switch string(tok) {
		case "true", "false", "null":
			return nil
		}
		if _, err := strconv.ParseFloat(string(tok), 64); err != nil {
			return fmt.Errorf("execute response: bad value %q", tok)
		}
		return nil
	}
}
