package httpapi

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

// Clients of pixelJobStreaming's cursor mode send no acknowledgement: the
// server has to tell from the connection whether an answer it wrote was
// read. Writing it completely says little, as the kernel's socket buffers
// (megabytes on loopback) take a whole answer whether or not the client
// ever reads it. What the connection does next says more, for an HTTP/1.1
// client talking to the server directly:
//
//   - another request on it: the client read the whole answer first
//     (HTTP/1.1 clients do not pipeline);
//   - a reset (RST): the client closed it with bytes unread, which is what
//     a TCP stack does when an application closes a socket it has not read
//     to the end (a client that timed out or crashed mid-answer, or read
//     part of it and gave up);
//   - a clean close (FIN), or nothing: no evidence either way.
//
// WatchConns and Delivery report the reset. Through a proxy they see the
// proxy, which reads every answer whole: the evidence is then the proxy's,
// not the client's.

// WatchConns wraps ln so that handlers can learn (Delivery) whether the
// client reset the connection before reading their answer. Serve it with
// ConnContext as the http.Server's ConnContext.
func WatchConns(ln net.Listener) net.Listener { return watchListener{ln} }

type watchListener struct{ net.Listener }

func (l watchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c}, nil
}

type watchedConnKey struct{}

// ConnContext is the http.Server ConnContext of a server on a WatchConns
// listener: it makes the connection known to Delivery.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if wc, ok := c.(*watchedConn); ok {
		return context.WithValue(ctx, watchedConnKey{}, wc)
	}
	return ctx
}

// watchedConn counts what the client sends and notices a reset.
type watchedConn struct {
	net.Conn

	mu sync.Mutex
	// read is the number of bytes the client has sent.
	read uint64
	// reset: the client reset the connection.
	reset bool
	// unread is called on a reset; anything the client sends first
	// forgets it.
	unread func()
	// settled is called once with the connection's first evidence after
	// an answer (OnSettled): true for a reset, false for anything else
	// (more bytes, a clean close).
	settled func(unread bool)
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	var (
		fire    func()
		settled func(bool)
		unread  bool
	)
	c.mu.Lock()
	if n > 0 {
		c.read += uint64(n)
		c.unread = nil
		settled, c.settled = c.settled, nil
	}
	switch {
	case err == nil:
	case errors.Is(err, syscall.ECONNRESET):
		c.reset = true
		fire, c.unread = c.unread, nil
		if settled == nil {
			settled, c.settled, unread = c.settled, nil, true
		}
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		// Closed cleanly by the client, or by the server: no evidence
		// that the answer went unread. (A timeout, such as net/http's
		// own deadline that ends a background read, says nothing: the
		// watch goes on.)
		c.unread = nil
		if settled == nil {
			settled, c.settled = c.settled, nil
		}
	}
	c.mu.Unlock()
	if fire != nil {
		fire()
	}
	if settled != nil {
		settled(unread)
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.mu.Lock()
	settled := c.settled
	c.settled, c.unread = nil, nil
	c.mu.Unlock()
	if settled != nil {
		settled(false)
	}
	return c.Conn.Close()
}

// CloseWrite lets http.Server half-close the connection before closing it
// (so that a client still sending gets the answer rather than a reset), as
// it does with a bare *net.TCPConn.
func (c *watchedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the underlying connection's sendfile path for file
// answers.
func (c *watchedConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

// Delivery is one answer's connection, watched for a sign that the client
// did not read the answer. Take it (WatchDelivery) before writing the
// answer.
type Delivery struct {
	c    *watchedConn
	mark uint64
}

// WatchDelivery returns the Delivery of the answer to the request whose
// context is ctx. Its zero value (a server not on WatchConns) watches
// nothing.
func WatchDelivery(ctx context.Context) Delivery {
	c, _ := ctx.Value(watchedConnKey{}).(*watchedConn)
	if c == nil {
		return Delivery{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return Delivery{c: c, mark: c.read}
}

// OnUnread, called once the answer was written completely, arranges for
// unread to be called (once, from the connection's reader, so it should be
// brief) if the client resets the connection before sending anything more
// on it: then the client most likely did not read the whole answer. If the
// connection was reset already, unread is called before OnUnread returns.
// It is forgotten when the client sends another request, closes the
// connection cleanly, or the server closes it. It reports whether the
// connection is watched at all.
func (d Delivery) OnUnread(unread func()) bool {
	if d.c == nil {
		return false
	}
	d.c.mu.Lock()
	switch {
	case d.c.read > d.mark:
		// The client sent more since the answer began: it read it.
	case d.c.reset:
		d.c.mu.Unlock()
		unread()
		return true
	default:
		d.c.unread = unread
	}
	d.c.mu.Unlock()
	return true
}

// OnSettled, called once the answer was written completely, arranges for
// settled to be called once with the connection's first evidence after it:
// unread true for a reset before anything more (see OnUnread), false for
// more bytes from the client, a clean close or the server closing it. If
// the evidence is in already, settled is called before OnSettled returns.
// A caller about to act on "written" can wait for it, briefly: the
// connection's reader may not have seen a reset yet when the client's next
// request arrives on another connection.
func (d Delivery) OnSettled(settled func(unread bool)) bool {
	if d.c == nil {
		return false
	}
	d.c.mu.Lock()
	switch {
	case d.c.read > d.mark:
		d.c.mu.Unlock()
		settled(false)
	case d.c.reset:
		d.c.mu.Unlock()
		settled(true)
	default:
		d.c.settled = settled
		d.c.mu.Unlock()
	}
	return true
}
