package wire

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFindHeadInPieces(t *testing.T) {
	const msg = "\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\nbody"
	b := NewReader(iotest.OneByteReader(strings.NewReader(msg)), 64)
	for {
		if n, ok := b.FindHead(true); ok {
			if got := string(b.Next(n)); got != "GET / HTTP/1.1\r\nHost: a\r\n\r\n" {
				t.Fatalf("head %q", got)
			}
			break
		}
		if err := b.Fill(); err != nil {
			t.Fatal(err)
		}
	}
	rest, err := io.ReadAll(b)
	if err != nil || string(rest) != "body" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestFindHeadLimit(t *testing.T) {
	b := NewReader(strings.NewReader(strings.Repeat("a", 100)), 16)
	var err error
	for err == nil {
		if _, ok := b.FindHead(true); ok {
			t.Fatal("found a head in a line without end")
		}
		err = b.Fill()
	}
	if err != ErrBufferFull {
		t.Fatalf("got %v, want ErrBufferFull", err)
	}
}

func TestLine(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		err      error
	}{
		{"5;x=1\r\nrest", "5;x=1", nil},
		{"5\nrest", "", ErrBareLF},
		{"5\r5\r\n", "", ErrBareCR},
		{strings.Repeat("f", 40) + "\r\n", "", ErrLineTooLong},
		{"5", "", io.ErrUnexpectedEOF},
	} {
		line, err := NewReader(iotest.OneByteReader(strings.NewReader(tt.in)), 64).Line(16)
		if string(line) != tt.want || err != tt.err {
			t.Errorf("Line(%q) = %q, %v; want %q, %v", tt.in, line, err, tt.want, tt.err)
		}
	}
}
