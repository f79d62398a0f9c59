package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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

// visible returns untrusted text (the model's, a provider's, the server's)
// safe to print on a terminal: newline and tab are kept; every other C0
// control (U+0000-U+001F) and DEL is shown as \xNN (ESC as \x1b, CR as
// \x0d, BEL as \x07), every C1 control (U+0080-U+009F) as \u00NN (CSI as
// \u009b), and every byte of invalid UTF-8 as \xNN, so that no escape
// sequence, carriage return or backspace in it can move the cursor, clear
// the screen, retitle the window, write the clipboard or hide what came
// before it. Backslashes are left alone: text quoting \x1b reads as it
// would anyway. jobstream's own styles are written apart, never through
// visible.
func visible(s string) string {
	i := 0
	for i < len(s) {
		if c := s[i]; c >= 0x20 && c < 0x7f || c == '\n' || c == '\t' {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if needsEscape(r, n) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1: // a byte of invalid UTF-8
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case needsEscape(r, n) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r, n):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// needsEscape reports whether the rune r, n bytes long, is one visible
// escapes.
func needsEscape(r rune, n int) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f:
		return true
	}
	return r == utf8.RuneError && n == 1
}

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
