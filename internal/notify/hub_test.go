package notify_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/store"
)

// woken reports whether w has a wake-up pending, consuming it.
func woken(w *notify.Waiter) bool {
	select {
	case <-w.C:
		return true
	default:
		return false
	}
}

func TestHub(t *testing.T) {
	t.Parallel()

	setup := func(t *testing.T) *notify.Hub { return notify.NewHub(store.ParseIDs) }

	t.Run("WakesOnlyThatJob", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		a, b := uuid.New(), uuid.New()
		wa1, wa2, wb := h.Subscribe(a), h.Subscribe(a), h.Subscribe(b)
		defer wa1.Close()
		defer wa2.Close()
		defer wb.Close()
		if n := h.Wake(a); n != 2 {
			t.Errorf("Wake(a) woke %d, want 2", n)
		}
		if !woken(wa1) || !woken(wa2) || woken(wb) {
			t.Error("Wake(a) must wake a's waiters and only them")
		}
	})

	t.Run("WakeUpsCoalesceAndNeverBlock", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		id := uuid.New()
		w := h.Subscribe(id)
		defer w.Close()
		for range 100 {
			h.Wake(id)
		}
		if !woken(w) || woken(w) {
			t.Error("100 wake-ups must leave exactly one pending")
		}
	})

	t.Run("CloseUnsubscribes", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		id := uuid.New()
		w := h.Subscribe(id)
		if h.Waiting() != 1 {
			t.Fatalf("Waiting = %d", h.Waiting())
		}
		w.Close()
		w.Close() // twice is fine
		if h.Waiting() != 0 || h.Wake(id) != 0 || woken(w) {
			t.Error("a closed waiter must not be woken or counted")
		}
	})

	t.Run("NotificationPayloadAndBacklog", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		a, b, c := uuid.New(), uuid.New(), uuid.New()
		wa, wb, wc := h.Subscribe(a), h.Subscribe(b), h.Subscribe(c)
		defer wa.Close()
		defer wb.Close()
		defer wc.Close()
		h.HandleNotification(context.Background(), &pgconn.Notification{Channel: store.ChannelChunks, Payload: a.String() + ",junk," + b.String()})
		if !woken(wa) || !woken(wb) || woken(wc) {
			t.Error("a notification must wake exactly the jobs it names")
		}
		h.HandleBacklog(context.Background())
		if !woken(wa) || !woken(wb) || !woken(wc) {
			t.Error("the backlog (a reconnect) must wake every waiter")
		}
	})
}
