package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestDelivery: an answer's unread callback runs when the client resets the
// connection with the answer partly unread, and not when it read the whole
// answer and then sent another request or closed the connection.
func TestDelivery(t *testing.T) {
	t.Parallel()
	const size = 256 << 10
	var (
		written = make(chan struct{}, 4)
		fired   = make(chan string, 4)
		closed  = make(chan string, 4)
	)
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		d := WatchDelivery(r.Context())
		w.Header().Set("Content-Length", fmt.Sprint(size))
		if _, err := w.Write([]byte(strings.Repeat("x", size))); err != nil {
			return
		}
		if err := http.NewResponseController(w).Flush(); err != nil {
			return
		}
		written <- struct{}{}
		name := r.URL.Query().Get("name")
		if !d.OnUnread(func() { fired <- name }) {
			t.Errorf("%s: connection not watched", name)
		}
	})
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:     mux,
		ConnContext: ConnContext,
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				closed <- "closed"
			}
		},
	}
	go srv.Serve(WatchConns(ln))
	t.Cleanup(func() { srv.Close() })

	get := func(conn net.Conn, path string) {
		t.Helper()
		if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
			t.Fatal(err)
		}
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// expect waits until the server has closed the connection, then
	// checks whether the callback ran (it runs before the close).
	expect := func(name string, unread bool) {
		t.Helper()
		<-closed
		select {
		case got := <-fired:
			if !unread || got != name {
				t.Fatalf("%s: unread callback of %q ran", name, got)
			}
		default:
			if unread {
				t.Fatalf("%s: unread callback did not run", name)
			}
		}
	}

	// Reads a little, then closes once the whole answer was written: a
	// reset with the answer unread.
	c := dial()
	get(c, "/big?name=partial")
	if _, err := io.ReadFull(c, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	<-written
	c.Close()
	expect("partial", true)

	// Reads the whole answer, asks again on the same connection, then
	// closes cleanly.
	c = dial()
	br := bufio.NewReader(c)
	get(c, "/big?name=next")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	<-written
	get(c, "/small")
	if resp, err = http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	c.Close()
	expect("next", false)

	// Reads the whole answer, then closes cleanly.
	c = dial()
	br = bufio.NewReader(c)
	get(c, "/big?name=whole")
	if resp, err = http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	<-written
	c.Close()
	expect("whole", false)
}
