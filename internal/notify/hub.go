package notify

import (
	"context"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// Hub fans wake-ups out by job id to in-process waiters. A waiter holds no
// database connection: it sleeps on its channel and re-reads when woken.
type Hub struct {
	mu      sync.Mutex
	waiters map[uuid.UUID]map[*Waiter]struct{}
	count   int
	// Parse turns a notification payload into job ids.
	Parse func(payload string) []uuid.UUID
}

// NewHub returns a Hub whose payloads are parsed by parse.
func NewHub(parse func(payload string) []uuid.UUID) *Hub {
	return &Hub{waiters: map[uuid.UUID]map[*Waiter]struct{}{}, Parse: parse}
}

// Waiter is one subscription to a job's wake-ups.
type Waiter struct {
	// C receives a value when the job may have changed. It is buffered
	// (capacity 1) so wake-ups coalesce and never block the Hub.
	C   chan struct{}
	hub *Hub
	id  uuid.UUID
}

// Subscribe registers a waiter for job id. Subscribe before reading, then
// wait: a change committed between the read and the wait still wakes it.
func (h *Hub) Subscribe(id uuid.UUID) *Waiter {
	w := &Waiter{C: make(chan struct{}, 1), hub: h, id: id}
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.waiters[id]
	if set == nil {
		set = map[*Waiter]struct{}{}
		h.waiters[id] = set
	}
	set[w] = struct{}{}
	h.count++
	return w
}

// Close unregisters the waiter. Safe to call twice.
func (w *Waiter) Close() {
	h := w.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.waiters[w.id]
	if _, ok := set[w]; !ok {
		return
	}
	delete(set, w)
	h.count--
	if len(set) == 0 {
		delete(h.waiters, w.id)
	}
}

func (w *Waiter) wake() {
	select {
	case w.C <- struct{}{}:
	default:
	}
}

// Wake wakes every waiter of the given jobs and returns how many it woke.
func (h *Hub) Wake(ids ...uuid.UUID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, id := range ids {
		for w := range h.waiters[id] {
			w.wake()
			n++
		}
	}
	return n
}

// WakeAll wakes every waiter.
func (h *Hub) WakeAll() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.waiters {
		for w := range set {
			w.wake()
		}
	}
	return h.count
}

// Waiting is the number of registered waiters.
func (h *Hub) Waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// HandleNotification wakes the waiters of the jobs named in the payload.
func (h *Hub) HandleNotification(_ context.Context, n *pgconn.Notification) {
	h.Wake(h.Parse(n.Payload)...)
}

// HandleBacklog wakes everyone: notifications may have been lost while the
// listener was disconnected.
func (h *Hub) HandleBacklog(context.Context) { h.WakeAll() }
