package stream

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/store"
)

// idleCache spares the first read of a waiting Read when it cannot find
// anything. A streaming client calls Read again at once with the offset
// the previous Read returned; that Read's first read would find nothing new
// unless a chunk was committed in between. The previous Read's waiter was
// subscribed before its last read, so it has been woken if and only if a
// notification came since (or shortly before) that read. The cache keeps
// that waiter subscribed, per job; a Read for the same job, tenant and
// offset, after subscribing its own waiter, skips its first read when the
// kept waiter has not been woken: any commit not in the previous read
// either woke the kept waiter before this check, or notifies after this
// Read subscribed and wakes it. Halves the reads of SSE streams, whose
// handler calls Read after every chunk it sends.
type idleCache struct {
	ttl time.Duration

	mu        sync.Mutex
	jobs      map[uuid.UUID]*idleEntry
	lastSweep time.Time
}

type idleEntry struct {
	tenant string
	from   int
	snap   store.Snapshot // status only
	w      *notify.Waiter
	at     time.Time
}

func newIdleCache(ttl time.Duration) *idleCache {
	return &idleCache{ttl: ttl, jobs: map[uuid.UUID]*idleEntry{}}
}

// lookup returns the status of job at offset from, known to have no chunk
// at or after from since a read no older than the cache's ttl, when the
// waiter kept since that read has not been woken. Call it after
// subscribing the caller's own waiter.
func (c *idleCache) lookup(tenant string, job uuid.UUID, from int, now time.Time) (store.Snapshot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(now)
	e := c.jobs[job]
	if e == nil || e.tenant != tenant || e.from != from || now.Sub(e.at) > c.ttl || len(e.w.C) > 0 {
		return store.Snapshot{}, false
	}
	return e.snap, true
}

// keep takes ownership of w, which was subscribed before a read that found
// nothing at or after from with the job not finished. It reports whether it
// kept w; if not, the caller closes it.
func (c *idleCache) keep(tenant string, job uuid.UUID, from int, snap store.Snapshot, w *notify.Waiter, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(now)
	if e := c.jobs[job]; e != nil {
		if e.tenant == tenant && e.from >= from && len(e.w.C) == 0 {
			return false // as fresh already
		}
		e.w.Close()
	}
	c.jobs[job] = &idleEntry{
		tenant: tenant, from: from, w: w, at: now,
		snap: store.Snapshot{Status: snap.Status, FinishReason: snap.FinishReason},
	}
	return true
}

// sweep drops expired entries, at most once per ttl. Entries of streams
// that ended stay subscribed until then.
func (c *idleCache) sweep(now time.Time) {
	if now.Sub(c.lastSweep) <= c.ttl {
		return
	}
	c.lastSweep = now
	for id, e := range c.jobs {
		if now.Sub(e.at) > c.ttl {
			e.w.Close()
			delete(c.jobs, id)
		}
	}
}
