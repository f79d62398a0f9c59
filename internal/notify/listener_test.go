package notify_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/store"
)

// testTimeout bounds waits on signals that should come at once. It is a
// safety net that turns a hang into a failure, never a synchronisation.
const testTimeout = 30 * time.Second

func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	select {
	case v := <-c:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestListener(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		listener *notify.Listener
		hub      *notify.Hub
		appName  string
		errs     chan error
	}
	// setup starts a Listener whose connection is tagged with a unique
	// application_name, so the test can find (and kill) its backend.
	setup := func(t *testing.T, configure func(*notify.Listener)) testBundle {
		url := dbtest.URL(t)
		b := testBundle{hub: notify.NewHub(store.ParseIDs), appName: "listener-" + uuid.NewString()[:8], errs: make(chan error, 16)}
		b.listener = &notify.Listener{
			Connect: func(ctx context.Context) (*pgx.Conn, error) {
				cfg, err := pgx.ParseConfig(url)
				if err != nil {
					return nil, err
				}
				cfg.RuntimeParams["application_name"] = b.appName
				return pgx.ConnectConfig(ctx, cfg)
			},
			LogError: func(_ context.Context, err error) {
				select {
				case b.errs <- err:
				default:
				}
			},
			ReconnectDelay: time.Millisecond,
		}
		b.listener.Handle(store.ChannelChunks, b.hub)
		if configure != nil {
			configure(b.listener)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.listener.Listen(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Listen returned %v, want context.Canceled", err)
			}
		})
		recv(t, b.listener.Ready(), "the listener to be ready")
		return b
	}
	notifyIDs := func(t *testing.T, ids ...uuid.UUID) {
		t.Helper()
		payload := ""
		for i, id := range ids {
			if i > 0 {
				payload += ","
			}
			payload += id.String()
		}
		if _, err := dbtest.Pool(t).Exec(context.Background(), "SELECT pg_notify($1, $2)", store.ChannelChunks, payload); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("DeliversToTheJobsWaiters", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		if !b.listener.Connected() || b.listener.Connects() != 1 {
			t.Errorf("Connected = %v, Connects = %d after Ready", b.listener.Connected(), b.listener.Connects())
		}
		id, other := uuid.New(), uuid.New()
		w, wo := b.hub.Subscribe(id), b.hub.Subscribe(other)
		defer w.Close()
		defer wo.Close()
		notifyIDs(t, id)
		recv(t, w.C, "the wake-up")
		if woken(wo) {
			t.Error("a waiter of another job was woken")
		}
		if b.listener.Received() < 1 {
			t.Errorf("Received = %d", b.listener.Received())
		}
	})

	t.Run("DispatchesByChannel", func(t *testing.T) {
		t.Parallel()
		got := make(chan string, 1)
		b := setup(t, func(l *notify.Listener) {
			l.Handle(store.ChannelCancel, notify.HandlerFunc(func(_ context.Context, n *pgconn.Notification) {
				select {
				case got <- n.Payload:
				default:
				}
			}))
		})
		id := uuid.New()
		w := b.hub.Subscribe(id)
		defer w.Close()
		if _, err := dbtest.Pool(t).Exec(context.Background(), "SELECT pg_notify($1, $2)", store.ChannelCancel, id.String()); err != nil {
			t.Fatal(err)
		}
		if p := recv(t, got, "the cancel notification"); p != id.String() {
			t.Errorf("cancel handler got %q", p)
		}
		if woken(w) {
			t.Error("a cancel notification woke a chunk waiter")
		}
	})

	t.Run("ReconnectsAfterTerminateAndWakesWaiters", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		id := uuid.New()
		// Subscribed after the first connect's backlog: nothing pending.
		w := b.hub.Subscribe(id)
		defer w.Close()

		var killed int
		err := dbtest.Pool(t).QueryRow(context.Background(), `
			SELECT count(*) FROM (
				SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE application_name = $1 AND query LIKE 'LISTEN%') t`, b.appName).Scan(&killed)
		if err != nil || killed != 1 {
			t.Fatalf("terminated %d listener backends (%v), want 1", killed, err)
		}
		// Notifications sent while it was down are lost, so the reconnect
		// wakes every waiter to re-read: that wake-up is the signal.
		recv(t, w.C, "the wake-up after reconnecting")
		if n := b.listener.Connects(); n != 2 {
			t.Errorf("Connects = %d, want 2", n)
		}
		if !b.listener.Connected() {
			t.Error("Connected = false after reconnecting")
		}
		if err := recv(t, b.errs, "the disconnect to be logged"); err == nil {
			t.Error("LogError got a nil error")
		}
		// And it listens again.
		notifyIDs(t, id)
		recv(t, w.C, "a wake-up through the new connection")
	})

	t.Run("RetriesFailedConnects", func(t *testing.T) {
		t.Parallel()
		var (
			mu    sync.Mutex
			calls int
		)
		b := setup(t, func(l *notify.Listener) {
			connect := l.Connect
			l.Connect = func(ctx context.Context) (*pgx.Conn, error) {
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				if n <= 2 {
					return nil, errors.New("database starting up")
				}
				return connect(ctx)
			}
		})
		if err := recv(t, b.errs, "the failed connect to be logged"); err == nil {
			t.Error("LogError got a nil error")
		}
		if b.listener.Connects() != 1 {
			t.Errorf("Connects = %d, want 1", b.listener.Connects())
		}
	})

	t.Run("RequiresConnect", func(t *testing.T) {
		t.Parallel()
		var l notify.Listener
		if err := l.Listen(context.Background()); err == nil {
			t.Error("Listen without Connect must fail")
		}
	})
}

// TestListenerConnectTimeout: a connection attempt that hangs (a server
// that accepts the TCP connection and never answers, as a half-open
// connection does) is abandoned after ConnectTimeout and retried, instead
// of leaving the process without notifications for good (issue 9).
func TestListenerConnectTimeout(t *testing.T) {
	t.Parallel()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	defer func() {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()

	url := dbtest.URL(t)
	var attempts int
	errs := make(chan error, 16)
	l := &notify.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			attempts++
			if attempts == 1 {
				return pgx.Connect(ctx, "postgres://postgres@"+silent.Addr().String()+"/postgres?sslmode=disable")
			}
			return pgx.Connect(ctx, url)
		},
		LogError: func(_ context.Context, err error) {
			select {
			case errs <- err:
			default:
			}
		},
		ReconnectDelay: time.Millisecond,
		ConnectTimeout: 200 * time.Millisecond,
	}
	l.Handle(store.ChannelChunks, notify.NewHub(store.ParseIDs))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Listen(ctx) }()
	defer func() { cancel(); <-done }()
	if err := recv(t, errs, "the hung connection attempt to be abandoned"); !strings.Contains(err.Error(), "connect") {
		t.Errorf("error %v, want a connect timeout", err)
	}
	recv(t, l.Ready(), "the listener to be ready after the retry")
}
