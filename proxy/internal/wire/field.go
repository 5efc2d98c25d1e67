package wire

import (
	"bytes"
	"errors"
)

// Field lines (RFC 9110 §5, RFC 9112 §5), the same grammar for requests,
// responses and trailers. What a field means is the caller's business.

// NextLine splits the first line off b, without its LF and one CR before
// it.
func NextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// Errors of FieldLine.
var (
	ErrObsFold    = errors.New("a header line folded onto the next (obs-fold)")
	ErrFieldName  = errors.New("invalid header field name")
	ErrFieldValue = errors.New("invalid character in a header field value")
)

// FieldLine parses one field line: a token directly followed by ':',
// optional whitespace, a value of visible characters, spaces and tabs. A
// line that starts with whitespace continues the one before it (obs-fold,
// RFC 9112 §5.2), which is refused.
func FieldLine(line []byte) (name, value []byte, err error) {
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		return nil, nil, ErrObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, ErrFieldName
	}
	name = line[:colon]
	for _, c := range name {
		if !tchar[c] {
			return nil, nil, ErrFieldName
		}
	}
	value = bytes.Trim(line[colon+1:], " \t")
	for _, c := range value {
		if !valueByte[c] {
			return nil, nil, ErrFieldValue
		}
	}
	return name, value, nil
}

// IsTchar reports whether c may appear in a token (field names, methods,
// codings).
func IsTchar(c byte) bool { return tchar[c] }

// IsValueByte reports whether c may appear in a field value: field-vchar,
// obs-text, SP and HTAB.
func IsValueByte(c byte) bool { return valueByte[c] }

var (
	tchar     = byteSet("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
	valueByte = func() (t [256]bool) {
		for c := 0x20; c < 0x7f; c++ {
			t[c] = true
		}
		for c := 0x80; c < 0x100; c++ {
			t[c] = true // obs-text
		}
		t['\t'] = true
		return t
	}()
)

func byteSet(s string) (t [256]bool) {
	for i := range len(s) {
		t[s[i]] = true
	}
	return t
}
