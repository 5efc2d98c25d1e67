package proxy

import (
	"bytes"
	"errors"
	"io"
)

// reader buffers one connection's input. Unlike bufio.Reader it lets the
// caller find a whole message head in the buffer and parse it in place,
// grows its buffer only up to a limit, and reads large bodies past the
// buffer.
type reader struct {
	conn io.Reader
	buf  []byte // buf[r:w] is buffered input
	r, w int
	max  int   // the largest buffer a head may need
	err  error // a read error, returned once the buffered bytes are consumed

	// findHead's progress in a head that is not complete yet, from r:
	// where the current line starts and how far it has looked.
	lineStart, searched int
}

// errBufferFull is returned by the head and line readers when what they
// look for does not fit in the buffer's limit.
var errBufferFull = errors.New("message head larger than the limit")

const initialBufSize = 4 << 10

func newReader(c io.Reader, max int) *reader {
	return &reader{conn: c, buf: make([]byte, min(initialBufSize, max)), max: max}
}

func (b *reader) buffered() int { return b.w - b.r }

// peek returns the next n buffered bytes without consuming them, as
// bufio.Reader's Peek, but never reading: n must not exceed buffered().
// The bytes are valid until the next read.
func (b *reader) peek(n int) []byte { return b.buf[b.r : b.r+n] }

// next returns and consumes the next n buffered bytes; n must not exceed
// buffered(). The bytes are valid until the next read.
func (b *reader) next(n int) []byte {
	p := b.buf[b.r : b.r+n]
	b.r += n
	return p
}

// fill reads once into the free space, making room first: it moves the
// unread bytes to the front, or doubles the buffer up to max. It returns
// errBufferFull when buf[r:w] already fills max bytes.
func (b *reader) fill() error {
	if b.err != nil {
		return b.err
	}
	if b.w == len(b.buf) {
		switch {
		case b.r > 0:
			b.w = copy(b.buf, b.buf[b.r:b.w])
			b.r = 0
		case len(b.buf) < b.max:
			nb := make([]byte, min(2*len(b.buf), b.max))
			b.w = copy(nb, b.buf[b.r:b.w])
			b.r = 0
			b.buf = nb
		default:
			return errBufferFull
		}
	}
	n, err := b.conn.Read(b.buf[b.w:])
	b.w += n
	if err != nil {
		if n > 0 {
			b.err = err // report it with the next fill
			return nil
		}
		return err
	}
	return nil
}

// shrink drops a buffer that grew for a large head once it is empty, so an
// idle connection holds only the initial size.
func (b *reader) shrink() {
	if b.r == b.w {
		b.r, b.w = 0, 0
		if len(b.buf) > initialBufSize {
			b.buf = make([]byte, initialBufSize)
		}
	}
}

// Read reads buffered bytes, or from the connection when none are buffered
// (straight into p when p is at least as large as the buffer).
func (b *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			err := b.err
			b.err = nil
			return 0, err
		}
		if len(p) >= len(b.buf) {
			return b.conn.Read(p)
		}
		b.r, b.w = 0, 0
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// line returns the next line without its CRLF, after reading as much as it
// needs, and consumes it. It accepts only CRLF as the terminator (chunk
// lines and trailers, RFC 9112 §7.1); a line longer than limit, or a CR or
// LF inside it, is an error. The line is valid until the next read.
func (b *reader) line(limit int) ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(b.buf[b.r+scanned:b.w], '\n'); i >= 0 {
			end := b.r + scanned + i // the LF
			line := b.buf[b.r:end]
			if len(line) == 0 || line[len(line)-1] != '\r' {
				return nil, errBareLF
			}
			line = line[:len(line)-1]
			if bytes.IndexByte(line, '\r') >= 0 {
				return nil, errBareCR
			}
			b.r = end + 1
			return line, nil
		}
		scanned = b.w - b.r
		if scanned > limit {
			return nil, errLineTooLong
		}
		if err := b.fill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

var (
	errBareLF      = errors.New("a line ends in LF without CR")
	errBareCR      = errors.New("a CR not followed by LF")
	errLineTooLong = errors.New("a line longer than the limit")
)
