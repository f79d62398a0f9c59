package worker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobstream/jobstream/internal/store"
)

// Write modes (Config.WriteMode).
const (
	// WriteBatched: the process-wide group-commit Writer (the default).
	WriteBatched = "batched"
	// WriteNaive: NaiveWriter, one transaction and one NOTIFY per chunk.
	// For benchmarks only (jobstream bench --write-mode naive).
	WriteNaive = "naive"
)

// ChunkWriter is what a job's run needs from a chunk writer: Writer (group
// commit, the default) or NaiveWriter (a commit per chunk, the baseline the
// benchmark compares it with).
type ChunkWriter interface {
	// Append queues (or writes) one chunk of a leased job. It returns
	// store.ErrLeaseLost once the lease is known to be gone.
	// It may wait (under ctx) when it cannot keep up.
	Append(ctx context.Context, c store.NewChunk) error
	// Finish commits a job's last chunk together with its terminal status,
	// after every chunk appended before it, and waits for the commit.
	Finish(ctx context.Context, last store.NewChunk, f store.Finish) error
	// Release forgets a finished job's lease state.
	Release(l store.Lease)
	// Pending is the number of rows not committed yet: the backlog that
	// admission control compares with Config.AdmitBacklog.
	Pending() int
	// Committed returns a channel closed at the next commit (nil if the
	// writer has no backlog to wait for).
	Committed() <-chan struct{}
	// Run runs the writer's background work until ctx is done, then
	// flushes what is left for up to drainTimeout.
	Run(ctx context.Context, drainTimeout time.Duration)
}

var (
	_ ChunkWriter = (*Writer)(nil)
	_ ChunkWriter = (*NaiveWriter)(nil)
)

// NaiveWriter commits every chunk in its own transaction with its own
// NOTIFY, synchronously in the job's goroutine, still fenced on the lease
// (it is store.WriteBatch with one row). It exists so that `jobstream
// bench --write-mode naive` can measure, side by side, what group commit
// buys: it managed ~1.6k tokens/s on a 2-core machine. Do not use it in production.
type NaiveWriter struct {
	store   *store.Store
	owner   string
	onFlush func(FlushStats)

	mu       sync.Mutex
	lost     map[store.Lease]bool
	inFlight atomic.Int64
}

// NewNaiveWriter returns a NaiveWriter writing as lease owner owner. Only
// cfg.OnFlush is used.
func NewNaiveWriter(s *store.Store, owner string, cfg WriterConfig) *NaiveWriter {
	return &NaiveWriter{store: s, owner: owner, onFlush: cfg.OnFlush, lost: map[store.Lease]bool{}}
}

// naiveWriteTimeout bounds one commit, which outlives ctx's cancellation
// as a queued chunk does in Writer.
const naiveWriteTimeout = 30 * time.Second

// Append commits c in its own transaction before returning.
func (w *NaiveWriter) Append(ctx context.Context, c store.NewChunk) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), naiveWriteTimeout)
	defer cancel()
	return w.write(ctx, c, nil)
}

// Finish commits the last chunk and the terminal status in one transaction.
func (w *NaiveWriter) Finish(ctx context.Context, last store.NewChunk, f store.Finish) error {
	return w.write(ctx, last, &f)
}

func (w *NaiveWriter) write(ctx context.Context, c store.NewChunk, f *store.Finish) error {
	w.mu.Lock()
	lost := w.lost[c.Lease]
	w.mu.Unlock()
	if lost {
		return store.ErrLeaseLost
	}
	var finishes []store.Finish
	if f != nil {
		finishes = []store.Finish{*f}
	}
	w.inFlight.Add(1)
	start := time.Now()
	held, err := w.store.WriteBatch(ctx, w.owner, []store.NewChunk{c}, finishes)
	w.inFlight.Add(-1)
	if w.onFlush != nil {
		st := FlushStats{Rows: 1, Finishes: len(finishes), Jobs: len(held), Duration: time.Since(start), Err: err}
		if held[c.Lease] {
			st.Notifies = 1
		} else if err == nil {
			st.Fenced = 1
		}
		w.onFlush(st)
	}
	if err != nil {
		return fmt.Errorf("naive writer: %w", err)
	}
	if !held[c.Lease] {
		w.mu.Lock()
		w.lost[c.Lease] = true
		w.mu.Unlock()
		return store.ErrLeaseLost
	}
	return nil
}

// Release forgets a finished job's lease state.
func (w *NaiveWriter) Release(l store.Lease) {
	w.mu.Lock()
	delete(w.lost, l)
	w.mu.Unlock()
}

// Committed is nil: a NaiveWriter commits in the job's goroutine and
// keeps no backlog.
func (w *NaiveWriter) Committed() <-chan struct{} { return nil }

// Pending is the number of commits in progress.
func (w *NaiveWriter) Pending() int { return int(w.inFlight.Load()) }

// Run has nothing to do in the background: it returns when ctx is done.
func (w *NaiveWriter) Run(ctx context.Context, _ time.Duration) { <-ctx.Done() }
