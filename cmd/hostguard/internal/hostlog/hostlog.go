// Package hostlog reads the Host values out of the logs people already
// have, for a dry run of an allow list (hostguard match): one Host per
// line, AWS Application Load Balancer access logs (plain or gzip, as
// exported to S3), and Django's "Invalid HTTP_HOST header" log lines.
package hostlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// Format names a log format.
type Format string

// The formats.
const (
	Hosts  Format = "hosts"  // one Host value per line
	ALB    Format = "alb"    // AWS ALB access logs: the authority of the logged request URL
	Django Format = "django" // Django's "Invalid HTTP_HOST header: '...'" lines
)

// Formats lists the formats, in the order of the documentation.
func Formats() []Format { return []Format{Hosts, ALB, Django} }

// ParseFormat parses a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown log format %q; use hosts, alb or django", s)
}

// Counts are what a read found.
type Counts struct {
	Lines   int // lines read
	Records int // lines that hold a Host
	// Skipped are lines of the format without a Host: an ALB record of a
	// request it could not parse ("- - -"), a Django line of another kind.
	Skipped int
}

// Read calls yield with the Host of every record in r, in order, with the
// number of its line. A gzip stream (an ALB log from S3) is decompressed.
// The host slice is valid only during the call. An error from yield stops
// the read and is returned.
func Read(r io.Reader, format Format, yield func(host []byte, line int) error) (Counts, error) {
	var c Counts
	br := bufio.NewReaderSize(r, 256<<10)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return c, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 256<<10)
	}
	var long []byte // a line longer than the buffer, assembled
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			c.Lines++
			line = bytes.TrimRight(line, "\r\n")
			host, ok := extract(format, line)
			switch {
			case !ok:
				c.Skipped++
			default:
				c.Records++
				if yerr := yield(host, c.Lines); yerr != nil {
					return c, yerr
				}
			}
		}
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, err
		}
	}
}

func extract(format Format, line []byte) ([]byte, bool) {
	switch format {
	case ALB:
		return albHost(line)
	case Django:
		return djangoHost(line)
	}
	// One Host per line: only the surrounding blanks are dropped; anything
	// else is part of the value that is checked.
	return bytes.Trim(line, " \t"), true
}

// albHost returns the Host of an ALB access log record: the authority of
// the request URL in the 13th field, "METHOD scheme://host:port/uri
// VERSION" (AWS, "Access logs for your Application Load Balancer"). The
// twelve fields before it are never quoted. A request the load balancer
// could not parse is logged as "- - - ": no Host.
func albHost(line []byte) ([]byte, bool) {
	rest := line
	for range 12 {
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			return nil, false
		}
		rest = rest[i+1:]
	}
	if len(rest) == 0 || rest[0] != '"' {
		return nil, false
	}
	rest = rest[1:]
	sp := bytes.IndexByte(rest, ' ') // after the method
	if sp < 0 {
		return nil, false
	}
	url := rest[sp+1:]
	if end := bytes.IndexAny(url, " \""); end >= 0 {
		url = url[:end]
	}
	i := bytes.Index(url, []byte("://"))
	if i < 0 {
		return nil, false // "-"
	}
	host := url[i+3:]
	if end := bytes.IndexAny(host, "/?"); end >= 0 {
		host = host[:end]
	}
	return host, true
}

var djangoMarker = []byte("Invalid HTTP_HOST header: ")

// djangoHost returns the Host of a Django DisallowedHost log line, which
// gives it as a Python string literal (repr): "Invalid HTTP_HOST header:
// 'evil.example'. You may need to add ...".
func djangoHost(line []byte) ([]byte, bool) {
	i := bytes.Index(line, djangoMarker)
	if i < 0 {
		return nil, false
	}
	s, ok := unquotePython(line[i+len(djangoMarker):])
	return s, ok
}

// unquotePython decodes the Python string literal at the start of b ('...'
// or "...", with repr's escapes).
func unquotePython(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != '\'' && b[0] != '"' {
		return nil, false
	}
	q := b[0]
	end := -1
	simple := true
	for i := 1; i < len(b); i++ {
		if b[i] == '\\' {
			simple = false
			i++
			continue
		}
		if b[i] == q {
			end = i
			break
		}
	}
	if end < 0 {
		return nil, false
	}
	body := b[1:end]
	if simple {
		return body, true
	}
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(body) {
			return nil, false
		}
		switch e := body[i]; e {
		case '\\', '\'', '"':
			out = append(out, e)
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if i+1+n > len(body) {
				return nil, false
			}
			v, err := strconv.ParseUint(string(body[i+1:i+1+n]), 16, 32)
			if err != nil {
				return nil, false
			}
			if e == 'x' {
				// WSGI hands Django the request's bytes as Latin-1
				// code points: \xNN is the byte NN on the wire.
				out = append(out, byte(v))
			} else {
				out = utf8.AppendRune(out, rune(v))
			}
			i += n
		default:
			return nil, false
		}
	}
	return out, true
}
