package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// styled reports whether w may get ANSI styles: a terminal, TERM not
// "dumb", and NO_COLOR (no-color.org) unset.
func (e *env) styled(w io.Writer) bool {
	return isTerminal(w) && e.getenv("TERM") != "dumb" && e.getenv("NO_COLOR") == ""
}

// ANSI styles for thinking: faint, then back to normal intensity.
const (
	styleDim   = "\x1b[2m"
	styleUndim = "\x1b[22m"
)

// spinner shows that something is happening on a terminal until stopped.
type spinner struct {
	w    io.Writer
	once sync.Once
	stop chan struct{}
	done chan struct{}
}

// startSpinner draws msg with a turning wheel on w (stderr) until Stop. On
// anything but a terminal it draws nothing: a log file wants no frames.
func startSpinner(w io.Writer, msg string) *spinner {
	s := &spinner{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	if !isTerminal(w) {
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		frames := `|/-\`
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(w, "\r%c %s", frames[i%len(frames)], msg)
			select {
			case <-s.stop:
				fmt.Fprint(w, "\r\x1b[K") // erase the line
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop erases the spinner and returns once it is gone; later calls do
// nothing.
func (s *spinner) Stop() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}
