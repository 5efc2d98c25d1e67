package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestChunkedReader(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		err      error
	}{
		{"2\r\nok\r\n0\r\n\r\nnext", "ok", nil},
		{"2;ext=1\r\nok\r\n000\r\nX-T: 1\r\n\r\n", "ok", nil},
		{"2\r\nokX\r\n0\r\n\r\n", "ok", ErrChunkData},
		{"\r\nok\r\n0\r\n\r\n", "", ErrChunkSize},
		{"1000000000000000\r\n", "", ErrChunkSize},
		{"2 x\r\nok\r\n0\r\n\r\n", "", ErrChunkSize},
		{"2\nok\r\n0\r\n\r\n", "", ErrBareLF},
		{"2\r\nok\r\n0\r\n folded\r\n\r\n", "ok", ErrTrailer},
		{"2\r\nok", "ok", io.ErrUnexpectedEOF},
	} {
		var c ChunkedReader
		c.Reset(NewReader(iotest.OneByteReader(strings.NewReader(tt.in)), 64), nil)
		got, err := io.ReadAll(&c)
		if string(got) != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("%q: read %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestChunkedTrailerCheck(t *testing.T) {
	refused := errors.New("refused")
	var c ChunkedReader
	c.Reset(NewReader(strings.NewReader("0\r\nHost: evil\r\n\r\n"), 64), func(line []byte) error {
		if bytes.HasPrefix(line, []byte("Host:")) {
			return refused
		}
		return nil
	})
	if _, err := io.ReadAll(&c); err != refused {
		t.Fatalf("got %v, want the check's error", err)
	}
}

func TestCopyBodyChunkedRoundTrip(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 5000) // several copy buffers
	var framed bytes.Buffer
	buf := make([]byte, CopyBufSize)
	n, readErr, writeErr := CopyBody(&framed, strings.NewReader(body), buf, true)
	if n != int64(len(body)) || readErr != nil || writeErr != nil {
		t.Fatalf("CopyBody: %d, %v, %v", n, readErr, writeErr)
	}
	var c ChunkedReader
	c.Reset(NewReader(&framed, 64), nil)
	got, err := io.ReadAll(&c)
	if err != nil || string(got) != body {
		t.Fatalf("round trip: %d bytes, %v", len(got), err)
	}
}

func TestLengthReader(t *testing.T) {
	var l LengthReader
	l.Reset(strings.NewReader("hello, more"), 5)
	if got, err := io.ReadAll(&l); string(got) != "hello" || err != nil {
		t.Fatalf("got %q, %v", got, err)
	}
	l.Reset(strings.NewReader("hel"), 5)
	if _, err := io.ReadAll(&l); err != io.ErrUnexpectedEOF {
		t.Fatalf("short body: %v", err)
	}
}
