// Package notify is jobstream's LISTEN/NOTIFY plumbing: one Listener per
// process holds the only LISTEN connection and dispatches notifications to
// handlers by channel; a Hub fans wake-ups out in memory to the request
// handlers waiting on a job.
//
// Notifications are wake-up pings, never data, and they are lossy: nothing
// is kept for a listener that is reconnecting. So after every (re)connect
// the Listener calls each handler's HandleBacklog (the Hub wakes every
// waiter, who then re-read from the database), and waiters also re-check on
// a timer.
package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Handler receives notifications of one channel.
type Handler interface {
	// HandleNotification is called for each notification, on the
	// listener's goroutine: it must not block.
	HandleNotification(ctx context.Context, n *pgconn.Notification)
	// HandleBacklog is called after every (re)connect, once LISTEN is in
	// place, because notifications sent while disconnected are lost.
	HandleBacklog(ctx context.Context)
}

// Defaults for Listener.
const (
	DefaultReconnectDelay = 500 * time.Millisecond
	DefaultPingInterval   = 10 * time.Second
	DefaultConnectTimeout = 10 * time.Second
)

// Listener holds one LISTEN connection and dispatches notifications. It
// starts listening on every channel before calling any handler's
// HandleBacklog, so nothing committed after HandleBacklog begins is missed.
type Listener struct {
	// Connect opens the dedicated connection. It must not go through a
	// transaction-mode pooler (PgBouncer), which breaks LISTEN. Required.
	Connect func(ctx context.Context) (*pgx.Conn, error)
	// LogError reports connection errors. Optional.
	LogError func(ctx context.Context, err error)
	// ReconnectDelay is the wait between connection attempts. Defaults to
	// 500 ms.
	ReconnectDelay time.Duration
	// PingInterval is how long the connection may be idle before it is
	// health-checked. Defaults to 10 s.
	PingInterval time.Duration
	// ConnectTimeout bounds connecting and issuing the LISTENs, after
	// which the attempt is abandoned and retried: a half-open connection
	// or a stuck server must not leave the process without notifications
	// for good. Defaults to 10 s.
	ConnectTimeout time.Duration

	mu       sync.Mutex
	handlers map[string]Handler

	readyOnce sync.Once
	ready     chan struct{}
	connected atomic.Bool
	connects  atomic.Int64
	received  atomic.Int64
}

// Handle registers h for channel. Call it before Listen.
func (l *Listener) Handle(channel string, h Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.handlers == nil {
		l.handlers = map[string]Handler{}
	}
	l.handlers[channel] = h
}

func (l *Listener) readyChan() chan struct{} {
	l.readyOnce.Do(func() { l.ready = make(chan struct{}) })
	return l.ready
}

// Ready is closed once the first LISTEN is in place (tests wait on it
// instead of sleeping).
func (l *Listener) Ready() <-chan struct{} { return l.readyChan() }

// Connected reports whether the LISTEN connection is currently up.
func (l *Listener) Connected() bool { return l.connected.Load() }

// Connects is the number of successful (re)connects so far.
func (l *Listener) Connects() int64 { return l.connects.Load() }

// Received is the number of notifications received so far.
func (l *Listener) Received() int64 { return l.received.Load() }

// Listen runs until ctx is done, reconnecting as needed. It returns ctx's
// error.
func (l *Listener) Listen(ctx context.Context) error {
	if l.Connect == nil {
		return errors.New("notify: Listener.Connect is required")
	}
	delay := l.ReconnectDelay
	if delay <= 0 {
		delay = DefaultReconnectDelay
	}
	for {
		err := l.listen(ctx)
		l.connected.Store(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if l.LogError != nil {
			l.LogError(ctx, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (l *Listener) listen(ctx context.Context) error {
	timeout := l.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	setupCtx, cancelSetup := context.WithTimeout(ctx, timeout)
	defer cancelSetup()
	conn, err := l.Connect(setupCtx)
	if err != nil {
		return fmt.Errorf("notify: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()

	l.mu.Lock()
	handlers := make(map[string]Handler, len(l.handlers))
	for ch, h := range l.handlers {
		handlers[ch] = h
	}
	l.mu.Unlock()

	for ch := range handlers {
		if _, err := conn.Exec(setupCtx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("notify: listen %q: %w", ch, err)
		}
	}
	cancelSetup()
	l.connected.Store(true)
	l.connects.Add(1)
	for _, h := range handlers {
		h.HandleBacklog(ctx)
	}
	ready := l.readyChan()
	select {
	case <-ready:
	default:
		close(ready)
	}

	ping := l.PingInterval
	if ping <= 0 {
		ping = DefaultPingInterval
	}
	for {
		waitCtx, cancel := context.WithTimeout(ctx, ping)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
				// Idle: make sure the connection is still alive.
				pingCtx, cancel := context.WithTimeout(ctx, ping)
				err := conn.Ping(pingCtx)
				cancel()
				if err != nil {
					return fmt.Errorf("notify: ping: %w", err)
				}
				continue
			}
			return fmt.Errorf("notify: wait: %w", err)
		}
		l.received.Add(1)
		if h, ok := handlers[n.Channel]; ok {
			h.HandleNotification(ctx, n)
		}
	}
}

// HandlerFunc adapts a function to Handler, for a handler with no backlog
// to catch up on after a (re)connect: its HandleBacklog does nothing.
type HandlerFunc func(ctx context.Context, n *pgconn.Notification)

// HandleNotification calls f.
func (f HandlerFunc) HandleNotification(ctx context.Context, n *pgconn.Notification) { f(ctx, n) }

// HandleBacklog does nothing.
func (f HandlerFunc) HandleBacklog(context.Context) {}
