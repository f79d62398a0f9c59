package testserver

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
)

// servingLine matches the line `serve` logs once its HTTP listener is bound
// (internal/server: log.Info("serving", "addr", ...)).
var servingLine = regexp.MustCompile(`\bmsg=serving addr=(\S+)`)

// LogWatcher is an io.Writer for a server's log (its stderr). It keeps what
// was written, and Addr delivers the address of the first "msg=serving"
// line: the signal that `serve --addr 127.0.0.1:0` is ready, with the port
// it bound. Safe for concurrent use.
type LogWatcher struct {
	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	addr    chan string
	found   bool
}

// NewLogWatcher returns an empty LogWatcher.
func NewLogWatcher() *LogWatcher {
	return &LogWatcher{addr: make(chan string, 1)}
}

// Write implements io.Writer.
func (w *LogWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	if w.found {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		if m := servingLine.FindStringSubmatch(line); m != nil {
			w.found = true
			w.partial = nil
			w.addr <- strings.Trim(m[1], `"`)
			break
		}
	}
	return len(p), nil
}

// Addr delivers the bound address (host:port) once the server logs it.
func (w *LogWatcher) Addr() <-chan string { return w.addr }

// String returns everything written so far.
func (w *LogWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}
