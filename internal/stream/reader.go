// Package stream implements "everything after offset N, waiting if there is
// nothing yet" independently of HTTP: subscribe to the job's wake-ups, read
// status and chunks in one snapshot, and wait only when nothing is new and
// the job is not finished. The long-poll, SSE and SEMOSS handlers are thin
// layers over Reader.Read.
//
// Reads are coalesced: concurrent reads (typically every reader woken by
// one notification) are served by one statement (store.ReadMany), so the
// number of queries per second follows the number of commits, not the
// number of streams.
package stream

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/store"
)

// Defaults for Reader.
const (
	// DefaultRecheck is how often a waiter re-reads even without a
	// wake-up, because notifications are lossy. Jittered by ±20%.
	DefaultRecheck = time.Second
	// DefaultPollOnlyRecheck is the re-read interval in poll-only mode
	// (no LISTEN connection).
	DefaultPollOnlyRecheck = 100 * time.Millisecond
	// DefaultMaxReads is the number of read statements run at once.
	DefaultMaxReads = 4
	// DefaultMaxBatch is the number of reads one statement serves at most.
	DefaultMaxBatch = 500
	// readTimeout bounds one read statement.
	readTimeout = 10 * time.Second
)

// Hooks observe a Reader (metrics). Any field may be nil.
type Hooks struct {
	// Query is called after each read statement with the number of reads
	// it served and the chunks it returned.
	Query func(reads, rows int, d time.Duration, err error)
	// Wait is called when a waiting read (Wait > 0) returns, with its
	// duration and outcome: "data", "terminal", "empty" (nothing new before
	// the deadline) or "error".
	Wait func(d time.Duration, outcome string)
	// Skip is called when a read is spared because nothing can have
	// changed since the previous one (see idleCache).
	Skip func()
	// Local is called when a read is answered from the Feed, with the
	// chunks it returned.
	Local func(rows int)
}

// Config configures a Reader.
type Config struct {
	// Recheck is how often a waiter re-reads without a wake-up. Defaults
	// to DefaultRecheck, or DefaultPollOnlyRecheck without a hub.
	Recheck time.Duration
	// MaxReads caps the read statements run at once. Defaults to 4.
	MaxReads int
	// MaxBatch caps the reads one statement serves. 1 disables coalescing
	// (one statement per read). Defaults to 500.
	MaxBatch int
	// NoIdleCache turns off the idle cache (see idleCache), which spares
	// the first read of a Read that follows a Read of the same job up to
	// the same offset when nothing was committed since. For measurements.
	NoIdleCache bool
	// Feed, when set, answers reads of jobs running in this process from
	// what its writer just committed (see Feed). It needs the hub.
	Feed *Feed
	// Hooks observe the reader.
	Hooks Hooks
}

// Reader serves reads of job output.
type Reader struct {
	store   *store.Store
	hub     *notify.Hub
	recheck time.Duration
	hooks   Hooks
	batch   *coalescer // nil when coalescing is off
	idle    *idleCache // nil without a hub
	feed    *Feed      // nil without a hub, or when not configured

	// onWait, when set, is called each time a read goes to sleep waiting
	// for a wake-up (a test signal).
	onWait func()
}

// NewReader returns a Reader with the default Config but recheck. hub may be
// nil in poll-only mode, in which case recheck should be short
// (DefaultPollOnlyRecheck). recheck <= 0 takes the default.
func NewReader(s *store.Store, hub *notify.Hub, recheck time.Duration) *Reader {
	return New(s, hub, Config{Recheck: recheck})
}

// New returns a Reader.
func New(s *store.Store, hub *notify.Hub, cfg Config) *Reader {
	if cfg.Recheck <= 0 {
		cfg.Recheck = DefaultRecheck
		if hub == nil {
			cfg.Recheck = DefaultPollOnlyRecheck
		}
	}
	if cfg.MaxReads <= 0 {
		cfg.MaxReads = DefaultMaxReads
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	r := &Reader{store: s, hub: hub, recheck: cfg.Recheck, hooks: cfg.Hooks}
	if hub != nil {
		r.feed = cfg.Feed
	}
	if hub != nil && !cfg.NoIdleCache {
		r.idle = newIdleCache(cfg.Recheck)
	}
	if cfg.MaxBatch > 1 {
		r.batch = newCoalescer(s.ReadMany, cfg.MaxReads, cfg.MaxBatch, readTimeout)
		r.batch.observe = cfg.Hooks.Query
	}
	return r
}

// SetWaitHook sets a function called whenever a read starts waiting. For tests.
func (r *Reader) SetWaitHook(f func()) { r.onWait = f }

// Params of one read.
type Params struct {
	Tenant string
	JobID  uuid.UUID
	// From is the first seq wanted.
	From int
	// Limit caps the chunks returned (Snapshot.More reports a cut).
	Limit int
	// Wait is how long to wait for something new when there is nothing
	// past From and the job has not finished. 0 returns at once.
	Wait time.Duration
	// MinWait (linger): once something new is found, keep collecting until
	// MinWait has passed since the read began, so slow pollers get several
	// chunks per response. 0 returns as soon as anything is found.
	MinWait time.Duration
}

// Read returns the job's status and the chunks from p.From on, waiting up to
// p.Wait when there are none yet and the job is still going. It returns
// store.ErrNotFound for an unknown job (or another tenant's).
func (r *Reader) Read(ctx context.Context, p Params) (snap store.Snapshot, err error) {
	start := time.Now()
	var w *notify.Waiter
	if p.Wait > 0 && r.hub != nil {
		// Subscribe before the first read: a chunk committed after the
		// read still wakes us.
		w = r.hub.Subscribe(p.JobID)
		defer func() {
			// A waiter subscribed before a read that found the job
			// unfinished with nothing past the returned offset goes to
			// the idle cache, to spare the next Read's first read.
			if err == nil && !snap.Terminal() && !snap.More && r.idle != nil &&
				r.idle.keep(p.Tenant, p.JobID, nextOffset(snap, p.From), snap, w, time.Now()) {
				return
			}
			w.Close()
		}()
	}
	if p.Wait > 0 && r.hooks.Wait != nil {
		defer func() { r.hooks.Wait(time.Since(start), outcome(snap, err)) }()
	}
	var wake <-chan struct{}
	skip := false
	var idle store.Snapshot
	if w != nil {
		wake = w.C
		if r.idle != nil {
			idle, skip = r.idle.lookup(p.Tenant, p.JobID, p.From, start)
		}
	}
	deadline := start.Add(p.Wait)
	// recheck is set when the recheck timer, not a wake-up, ended the
	// last wait: that read goes to PostgreSQL whatever the Feed holds.
	recheck := false
	// noted is set once the read is recorded in the job's audit trail.
	noted := false
	for {
		var snap store.Snapshot
		// trustedUntil, when set, is when the Feed's "nothing new"
		// stops being trusted: the wait ends then, as a recheck.
		var trustedUntil time.Time
		if skip {
			// Nothing new since the last read (see idleCache): wait.
			skip, snap = false, idle
			if r.hooks.Skip != nil {
				r.hooks.Skip()
			}
		} else {
			var err error
			if snap, trustedUntil, err = r.readVia(ctx, p, !recheck); err != nil {
				return store.Snapshot{}, err
			}
		}
		if !noted {
			// The first snapshot says the job is the tenant's,
			// whichever source answered: the Feed, the idle cache
			// and the coalesced statement never reach the store's
			// own read functions with the client's context, so the
			// client's read is recorded here (at most once an hour
			// per client and job; no statement after that).
			noted = true
			r.store.NoteAccess(ctx, p.Tenant, p.JobID, store.AccessChunks)
		}
		if len(snap.Chunks) > 0 && !snap.Terminal() && !snap.More && p.MinWait > 0 {
			if linger := start.Add(min(p.MinWait, p.Wait)); time.Now().Before(linger) {
				if err := sleepUntil(ctx, linger); err != nil {
					return snap, nil
				}
				snap, _, err := r.readVia(ctx, p, true)
				return snap, err
			}
		}
		now := time.Now()
		if len(snap.Chunks) > 0 || snap.Terminal() || !now.Before(deadline) {
			return snap, nil
		}
		d := min(deadline.Sub(now), jitter(r.recheck))
		if !trustedUntil.IsZero() {
			d = min(d, max(trustedUntil.Sub(now), time.Millisecond))
		}
		if r.onWait != nil {
			r.onWait()
		}
		t := time.NewTimer(d)
		recheck = false
		select {
		case <-ctx.Done():
			t.Stop()
			return snap, ctx.Err()
		case <-wake:
		case <-t.C:
			recheck = true
		}
		t.Stop()
	}
}

// nextOffset is the offset after snap's chunks.
func nextOffset(snap store.Snapshot, from int) int {
	if n := len(snap.Chunks); n > 0 {
		return snap.Chunks[n-1].Seq + 1
	}
	return from
}

func outcome(snap store.Snapshot, err error) string {
	switch {
	case err != nil:
		return "error"
	case snap.Terminal():
		return "terminal"
	case len(snap.Chunks) > 0:
		return "data"
	default:
		return "empty"
	}
}

// readVia answers p from the Feed when local is true and the Feed can,
// else from PostgreSQL (read). until is set when the Feed answered
// "nothing new": when that answer stops being trusted.
func (r *Reader) readVia(ctx context.Context, p Params, local bool) (snap store.Snapshot, until time.Time, err error) {
	if local && r.feed != nil {
		var ok bool
		if snap, until, ok = r.feed.read(p); ok {
			if r.hooks.Local != nil {
				r.hooks.Local(len(snap.Chunks))
			}
			return snap, until, nil
		}
	}
	snap, err = r.read(ctx, p)
	return snap, time.Time{}, err
}

// read runs one read: through the coalescer (one statement for every read
// pending at the same moment), or, with coalescing off, as its own
// statement. Never shared with a statement already running: its snapshot
// may predate the commit this reader subscribed or was woken for, and the
// wake-up would be lost until the recheck timer (singleflight did exactly
// that; see TestReadNeverSharesAStaleStatement).
func (r *Reader) read(ctx context.Context, p Params) (store.Snapshot, error) {
	req := store.ReadRequest{Tenant: p.Tenant, JobID: p.JobID, From: p.From, Limit: p.Limit}
	if r.batch != nil {
		return r.batch.read(ctx, req)
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	start := time.Now()
	snap, err := r.store.Read(ctx, p.Tenant, p.JobID, p.From, p.Limit)
	if r.hooks.Query != nil {
		r.hooks.Query(1, len(snap.Chunks), time.Since(start), err)
	}
	return snap, err
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
