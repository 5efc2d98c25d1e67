package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// archive writes a deterministic tar.gz: entries sorted by name, mtime t,
// owner 0:0 without names, mode 0644 unless given (NAME=FILE:0755), and a
// gzip header without name or time.
func archive(out string, t time.Time, specs []string) error {
	type entry struct {
		name, file string
		mode       int64
	}
	var entries []entry
	for _, s := range specs {
		name, file, ok := strings.Cut(s, "=")
		if !ok || name == "" || file == "" {
			return fmt.Errorf("entry %q: want NAME=FILE or NAME=FILE:MODE", s)
		}
		mode := int64(0o644)
		if i := strings.LastIndex(file, ":"); i >= 0 {
			m, err := strconv.ParseInt(file[i+1:], 8, 64)
			if err != nil {
				return fmt.Errorf("entry %q: mode %q is not octal", s, file[i+1:])
			}
			file, mode = file[:i], m
		}
		entries = append(entries, entry{name, file, mode})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for i, e := range entries {
		if i > 0 && e.name == entries[i-1].name {
			return fmt.Errorf("entry %q given twice", e.name)
		}
		data, err := os.ReadFile(e.file)
		if err != nil {
			return err
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     e.name,
			Mode:     e.mode,
			Size:     int64(len(data)),
			ModTime:  t,
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}
