// Package wire reads HTTP/1.1 messages off a connection for the proxy: a
// buffered reader whose buffer stays private, that finds a whole message
// head in it for parsing in place, reads lines for the chunked grammar,
// and reads large bodies past the buffer. It knows the protocol's framing,
// not the proxy's policy; its errors are plain errors.
package wire

import (
	"bytes"
	"errors"
	"io"
)

// Reader buffers one connection's input. Unlike bufio.Reader it lets the
// caller find a whole message head in the buffer and parse it in place,
// grows its buffer only up to a limit, and reads large bodies past the
// buffer.
type Reader struct {
	conn io.Reader
	buf  []byte // buf[r:w] is buffered input
	r, w int
	max  int   // the largest buffer a head may need
	err  error // a read error, returned once the buffered bytes are consumed

	// FindHead's progress in a head that is not complete yet, from r:
	// where the current line starts and how far it has looked.
	lineStart, searched int
}

// ErrBufferFull is returned by Fill when the buffered bytes already fill
// the limit: a head or line that does not fit.
var ErrBufferFull = errors.New("message head larger than the limit")

const initialBufSize = 4 << 10

// NewReader returns a Reader of c whose buffer grows up to max bytes.
func NewReader(c io.Reader, max int) *Reader {
	return &Reader{conn: c, buf: make([]byte, min(initialBufSize, max)), max: max}
}

// Buffered returns how many bytes are buffered.
func (b *Reader) Buffered() int { return b.w - b.r }

// Peek returns the next n buffered bytes without consuming them, as
// bufio.Reader's Peek, but never reading: n must not exceed buffered().
// The bytes are valid until the next read.
func (b *Reader) Peek(n int) []byte { return b.buf[b.r : b.r+n] }

// Next returns and consumes the next n buffered bytes; n must not exceed
// buffered(). The bytes are valid until the next read.
func (b *Reader) Next(n int) []byte {
	p := b.buf[b.r : b.r+n]
	b.r += n
	return p
}

// Fill reads once into the free space, making room first: it moves the
// unread bytes to the front, or doubles the buffer up to max. It returns
// ErrBufferFull when buf[r:w] already fills max bytes.
func (b *Reader) Fill() error {
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
			return ErrBufferFull
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

// Shrink drops a buffer that grew for a large head once it is empty, so an
// idle connection holds only the initial size.
func (b *Reader) Shrink() {
	if b.r == b.w {
		b.r, b.w = 0, 0
		if len(b.buf) > initialBufSize {
			b.buf = make([]byte, initialBufSize)
		}
	}
}

// Read reads buffered bytes, or from the connection when none are buffered
// (straight into p when p is at least as large as the buffer).
func (b *Reader) Read(p []byte) (int, error) {
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
		if err := b.Fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// Line returns the next line without its CRLF, after reading as much as it
// needs, and consumes it. It accepts only CRLF as the terminator (chunk
// lines and trailers, RFC 9112 §7.1); a CR or LF inside the line is an
// error, and so is a line whose end is not among the first limit bytes
// buffered (a longer line that came whole in the buffer is returned: the
// buffer's own limit bounds it). The line is valid until the next read.
func (b *Reader) Line(limit int) ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(b.buf[b.r+scanned:b.w], '\n'); i >= 0 {
			end := b.r + scanned + i // the LF
			line := b.buf[b.r:end]
			if len(line) == 0 || line[len(line)-1] != '\r' {
				return nil, ErrBareLF
			}
			line = line[:len(line)-1]
			if bytes.IndexByte(line, '\r') >= 0 {
				return nil, ErrBareCR
			}
			b.r = end + 1
			return line, nil
		}
		scanned = b.w - b.r
		if scanned > limit {
			return nil, ErrLineTooLong
		}
		if err := b.Fill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// Errors of Line.
var (
	ErrBareLF      = errors.New("a line ends in LF without CR")
	ErrBareCR      = errors.New("a CR not followed by LF")
	ErrLineTooLong = errors.New("a line longer than the limit")
)

// FindHead looks in the buffered bytes for a complete message head and
// returns its length from the first buffered byte, or false when more
// must be read first. It remembers how far it looked, so that a head
// arriving in pieces is scanned once. skipEmpty skips empty lines before the first line (RFC 9112
// §2.2, for requests).
func (b *Reader) FindHead(skipEmpty bool) (int, bool) {
	if b.lineStart == 0 && b.searched == 0 && skipEmpty && !b.skipEmptyLines() {
		return 0, false
	}
	for {
		i := bytes.IndexByte(b.buf[b.r+b.searched:b.w], '\n')
		if i < 0 {
			b.searched = b.w - b.r
			return 0, false
		}
		nl := b.searched + i // from b.r
		line := b.buf[b.r+b.lineStart : b.r+nl]
		if b.lineStart > 0 && (len(line) == 0 || len(line) == 1 && line[0] == '\r') {
			b.lineStart, b.searched = 0, 0
			return nl + 1, true
		}
		b.lineStart, b.searched = nl+1, nl+1
	}
}

// skipEmptyLines consumes the empty lines (CRLF or LF) at the front of the
// buffered bytes and reports whether something else follows them.
func (b *Reader) skipEmptyLines() bool {
	for b.r < b.w {
		if b.buf[b.r] == '\n' {
			b.r++
		} else if b.buf[b.r] == '\r' && b.r+1 < b.w && b.buf[b.r+1] == '\n' {
			b.r += 2
		} else {
			break
		}
	}
	return !(b.r == b.w || b.buf[b.r] == '\r' && b.r+1 == b.w)
}
