package main

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// stderrAccessLog is the value of --access-log (and HOSTGUARD_ACCESS_LOG)
// that writes the access log to standard error; --access-log without a
// value means it.
const stderrAccessLog = "-"

// logFile is an access log file opened in append mode, which Reopen opens
// anew under its name: after logrotate has renamed it, SIGHUP makes the
// proxy write to a new file of the same name, as nginx does on USR1.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// openAccessLog returns the access log's writer for the flag's value:
// nil for "" (off), standard error for "-", else the file, created if need
// be and appended to.
func openAccessLog(value string, stderr io.Writer) (io.Writer, *logFile, error) {
	switch value {
	case "":
		return nil, nil, nil
	case stderrAccessLog:
		return stderr, nil, nil
	}
	l := &logFile{path: value}
	f, err := l.open()
	if err != nil {
		return nil, nil, err
	}
	l.f = f
	return l, l, nil
}

func (l *logFile) open() (*os.File, error) {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--access-log: %w (give a file in a directory the proxy may write to, or --access-log alone for standard error)", err)
	}
	return f, nil
}

// Write writes p, one access log line, to the current file.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the file under its name again and closes the previous one;
// on failure the previous one stays in use.
func (l *logFile) Reopen() error {
	f, err := l.open()
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
