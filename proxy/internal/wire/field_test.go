package wire

import "testing"

func TestFieldLine(t *testing.T) {
	for _, tt := range []struct {
		line, name, value string
		err               error
	}{
		{"Host: lhy.kr", "Host", "lhy.kr", nil},
		{"X-A:\t v \t", "X-A", "v", nil},
		{"X-Empty:", "X-Empty", "", nil},
		{" folded", "", "", ErrObsFold},
		{"\tfolded", "", "", ErrObsFold},
		{"Host : lhy.kr", "", "", ErrFieldName},
		{"X Y: z", "", "", ErrFieldName},
		{": v", "", "", ErrFieldName},
		{"no colon", "", "", ErrFieldName},
		{"X-A: a\x00b", "", "", ErrFieldValue},
		{"X-A: a\x7fb", "", "", ErrFieldValue},
		{"X-A: caf\xc3\xa9", "X-A", "caf\xc3\xa9", nil}, // obs-text
	} {
		name, value, err := FieldLine([]byte(tt.line))
		if string(name) != tt.name || string(value) != tt.value || err != tt.err {
			t.Errorf("FieldLine(%q) = %q, %q, %v; want %q, %q, %v", tt.line, name, value, err, tt.name, tt.value, tt.err)
		}
	}
}
