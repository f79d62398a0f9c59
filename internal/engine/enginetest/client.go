package enginetest

import (
	"io"
	"net/http"
	"sync"
	"unicode/utf8"
)

// RuneSplitClient returns an HTTP client that closes split the first time a
// response body Read returns data ending inside a multi-byte UTF-8
// character: proof that a character split across network writes reached the
// SSE reader in two pieces. Pair it with a Wait(split) step after the first
// half, so that the second half is only sent once the first was read.
func RuneSplitClient() (client *http.Client, split <-chan struct{}) {
	ch := make(chan struct{})
	rt := &runeSplitTransport{next: http.DefaultTransport.(*http.Transport).Clone(), split: ch}
	return &http.Client{Transport: rt}, ch
}

type runeSplitTransport struct {
	next  http.RoundTripper
	split chan struct{}
	once  sync.Once
}

func (t *runeSplitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err == nil {
		resp.Body = &runeSplitBody{ReadCloser: resp.Body, t: t}
	}
	return resp, err
}

type runeSplitBody struct {
	io.ReadCloser
	t *runeSplitTransport
}

func (b *runeSplitBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if endsInsideRune(p[:n]) {
		b.t.once.Do(func() { close(b.t.split) })
	}
	return n, err
}

// endsInsideRune reports whether b ends with an incomplete multi-byte UTF-8
// sequence.
func endsInsideRune(b []byte) bool {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			return b[i] >= utf8.RuneSelf && !utf8.FullRune(b[i:])
		}
	}
	return false
}
