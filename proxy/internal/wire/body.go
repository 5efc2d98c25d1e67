package wire

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Message bodies: readers that take exactly one body off a connection, and
// the chunked encoder. The proxy decodes every body and frames it anew, so
// the next hop never sees the sender's framing (or its chunk extensions)
// and cannot read it differently.

// Errors of the chunked grammar.
var (
	ErrChunkSize = errors.New("malformed chunk size")
	ErrChunkLine = errors.New("malformed chunk line (chunk lines end in CRLF)")
	ErrChunkData = errors.New("chunk data longer than its size")
	ErrTrailer   = errors.New("malformed trailer section")
)

// LengthReader reads a body of a known length.
type LengthReader struct {
	in   io.Reader
	left int64
}

// Reset makes l read a body of n bytes from in.
func (l *LengthReader) Reset(in io.Reader, n int64) { *l = LengthReader{in: in, left: n} }

func (l *LengthReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.in.Read(p)
	l.left -= int64(n)
	if err == io.EOF {
		if l.left > 0 {
			err = io.ErrUnexpectedEOF
		} else {
			err = nil
		}
	}
	return n, err
}

// Limits of the chunked grammar's lines.
const (
	maxChunkLine    = 4 << 10 // a chunk-size line with its extensions
	maxTrailerBytes = 8 << 10 // the whole trailer section
	maxChunkDigits  = 15      // 15 hex digits: below 2^60, leading zeros included
)

// ChunkedReader decodes a chunked body strictly (RFC 9112 §7.1): a size of
// 1 to 15 hex digits, extensions without control characters (dropped), CRLF
// after every line and after the data, and a trailer section whose fields
// are dropped (those that only a header may carry are an error).
type ChunkedReader struct {
	in      *Reader
	left    int64 // data left in the current chunk
	inChunk bool
	done    bool
	err     error
	// field checks each trailer field line; its error ends the body. Nil:
	// the fields are dropped unread.
	field func(line []byte) error
}

// Reset makes c read a new chunked body from in, checking each trailer
// field line with field (which may be nil).
func (c *ChunkedReader) Reset(in *Reader, field func(line []byte) error) {
	*c = ChunkedReader{in: in, field: field}
}

func (c *ChunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	for !c.inChunk {
		if err := c.chunkLine(); err != nil {
			c.err = err
			return 0, err
		}
		if c.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.in.Read(p)
	c.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && c.left == 0 {
		err = c.dataEnd()
		c.inChunk = false
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

// chunkLine reads a chunk-size line; for the last chunk, the trailer
// section too.
func (c *ChunkedReader) chunkLine() error {
	line, err := c.in.Line(maxChunkLine)
	if err != nil {
		return err
	}
	size, rest := int64(0), line
	digits := 0
	for ; digits < len(rest); digits++ {
		d := unhex(rest[digits])
		if d < 0 {
			break
		}
		size = size<<4 | int64(d)
	}
	if digits == 0 || digits > maxChunkDigits {
		return ErrChunkSize
	}
	if rest = rest[digits:]; len(rest) > 0 {
		// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
		rest = bytes.Trim(rest, " \t")
		if len(rest) == 0 || rest[0] != ';' {
			return ErrChunkSize
		}
		for _, ch := range rest {
			if !valueByte[ch] {
				return ErrChunkLine
			}
		}
	}
	if size > 0 {
		c.left, c.inChunk = size, true
		return nil
	}
	c.done = true
	return c.trailer()
}

// dataEnd reads the CRLF after a chunk's data. It may block: Read calls it
// as soon as a chunk's last data byte is read, so a sender that pauses
// between the data and its CRLF holds up the data already read until the
// CRLF comes (within the read deadline).
func (c *ChunkedReader) dataEnd() error {
	for c.in.Buffered() < 2 {
		if err := c.in.Fill(); err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	if crlf := c.in.Next(2); crlf[0] != '\r' || crlf[1] != '\n' {
		return ErrChunkData
	}
	return nil
}

// trailer reads the trailer section up to its empty line.
func (c *ChunkedReader) trailer() error {
	total := 0
	for {
		line, err := c.in.Line(maxChunkLine)
		if err != nil {
			if err == ErrBareLF || err == ErrBareCR {
				return ErrTrailer
			}
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if total += len(line) + 2; total > maxTrailerBytes {
			return ErrTrailer
		}
		if line[0] == ' ' || line[0] == '\t' {
			return ErrTrailer
		}
		if c.field != nil {
			if err := c.field(line); err != nil {
				return err
			}
		}
	}
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// CopyBufSize is the size of the buffers that bodies are copied through.
const CopyBufSize = 32 << 10

// chunkHead is room at the front of a copy buffer for a chunk-size line.
const chunkHead = 18 // 16 hex digits and CRLF

// CopyBody copies a body from src to dst through buf, framing it chunked
// when chunked is set (buf then holds the chunk-size line in front of the
// data and the CRLF after it, so that each chunk is one write). Read
// errors are returned as readErr, write errors as writeErr, so that the
// caller knows whose fault it was.
func CopyBody(dst io.Writer, src io.Reader, buf []byte, chunked bool) (written int64, readErr, writeErr error) {
	data := buf
	if chunked {
		data = buf[chunkHead : len(buf)-2]
	}
	for {
		n, err := src.Read(data)
		if n > 0 {
			out := data[:n]
			if chunked {
				start := chunkHead - 2 - hexLen(n)
				strconv.AppendInt(buf[start:start], int64(n), 16)
				buf[chunkHead-2], buf[chunkHead-1] = '\r', '\n'
				out = buf[start : chunkHead+n+2]
				out[len(out)-2], out[len(out)-1] = '\r', '\n'
			}
			if _, werr := dst.Write(out); werr != nil {
				return written, nil, werr
			}
			written += int64(n)
		}
		if err == io.EOF {
			if chunked {
				if _, werr := io.WriteString(dst, "0\r\n\r\n"); werr != nil {
					return written, nil, werr
				}
			}
			return written, nil, nil
		}
		if err != nil {
			return written, err, nil
		}
	}
}

func hexLen(n int) int {
	l := 1
	for n >= 16 {
		n >>= 4
		l++
	}
	return l
}
