package ledger

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/store"
)

// Config configures the Sequencer.
type Config struct {
	// Signer signs checkpoints; nil signs none (the log still grows).
	Signer note.Signer
	// Interval is how often the sequencer looks for new seals (default 1s).
	Interval time.Duration
	// CheckpointInterval is the least time between two checkpoints
	// (default 5s). A checkpoint is signed only when the tree has grown.
	CheckpointInterval time.Duration
	// CheckpointDir, if set, receives every checkpoint signed by this
	// node: <size>.checkpoint and checkpoint (the latest).
	CheckpointDir string
	// Batch bounds the leaves appended, and hashed, per step (default 1,000).
	Batch int
	// SweepEvery is how often a step looks for unlogged jobs among all
	// those ended, not only the recent ones (default an hour): a job
	// whose end was recorded with a time long past, or committed long
	// after it.
	SweepEvery time.Duration
	Logger     *slog.Logger
}

// Sequencer appends a job leaf for each ended job, numbers every leaf
// appended since (those retention and the triggers append too) in
// insertion order, has the database hash them into the tree in index order
// and signs checkpoints. Leaves are numbered here, not as they are
// inserted, so that appending a leaf takes no lock held to commit (a key
// revocation and a hold once deadlocked on one). Every node runs one; one at a time works (the
// log's advisory lock), so any node may die.
type Sequencer struct {
	st  *store.Store
	cfg Config
	// after is where the next scan of seals starts: after a full batch,
	// the last job it looked at; otherwise the previous step's start by
	// the database's clock, less recentSlack. Zero sweeps all.
	after     store.LogKeyset
	lastSweep time.Time
}

// recentSlack covers a seal committed after a step that started after the
// seal's finished_at: a finishing transaction is short. A full sweep
// every Config.SweepEvery catches anything older.
const recentSlack = 15 * time.Second

// NewSequencer returns a Sequencer over st.
func NewSequencer(st *store.Store, cfg Config) *Sequencer {
	cfg.Interval = cmp.Or(cfg.Interval, time.Second)
	cfg.CheckpointInterval = cmp.Or(cfg.CheckpointInterval, 5*time.Second)
	cfg.Batch = cmp.Or(cfg.Batch, 1000)
	cfg.SweepEvery = cmp.Or(cfg.SweepEvery, time.Hour)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sequencer{st: st, cfg: cfg}
}

// Step is what one step did.
type Step struct {
	// Locked is false when another node was sequencing.
	Locked bool
	// Appended job leaves, Hashed leaves (of any kind), Size the tree's size after.
	Appended, Hashed, Size int64
	// Checkpoint is the note signed in this step, if any.
	Checkpoint []byte
	// More is true when a batch was full: step again at once.
	More bool
}

// Step appends job leaves, numbers and hashes leaves, and signs, once.
func (q *Sequencer) Step(ctx context.Context) (Step, error) {
	var (
		s       Step
		started time.Time
		next    store.LogKeyset
	)
	locked, err := q.st.LogSequence(ctx, func(ctx context.Context, t *store.LogTx) error {
		s = Step{}
		started = t.Now
		if started.Sub(q.lastSweep) >= q.cfg.SweepEvery {
			q.after, q.lastSweep = store.LogKeyset{}, started
		}
		n, seen, err := t.AppendJobs(ctx, q.after, q.cfg.Batch)
		if err != nil {
			return err
		}
		s.Appended = n
		if n == int64(q.cfg.Batch) {
			next = seen
		} else {
			next = store.LogKeyset{Ended: started.Add(-recentSlack)}
		}
		sq, err := t.Sequence(ctx, q.cfg.Batch)
		if err != nil {
			return err
		}
		size := sq.Size
		s.Hashed, s.Size = sq.Hashed, size
		s.More = s.Appended == int64(q.cfg.Batch) || sq.Numbered == int64(q.cfg.Batch) || sq.Hashed == int64(q.cfg.Batch)
		if q.cfg.Signer == nil || size == 0 {
			return nil
		}
		last, err := t.LatestCheckpoint(ctx)
		if err != nil {
			return err
		}
		if last != nil && (size <= last.TreeSize || t.Now.Sub(last.At) < q.cfg.CheckpointInterval) {
			return nil
		}
		root, err := tlog.TreeHash(size, &hashReader{ctx: ctx, read: t.ReadHashes})
		if err != nil {
			return fmt.Errorf("tree hash: %w", err)
		}
		msg, err := Checkpoint{Origin: q.cfg.Signer.Name(), Size: size, Root: root}.Sign(q.cfg.Signer)
		if err != nil {
			return err
		}
		if err := t.InsertCheckpoint(ctx, size, root[:], string(msg)); err != nil {
			return err
		}
		s.Checkpoint = msg
		return nil
	})
	if err != nil || !locked {
		return Step{}, err
	}
	s.Locked = true
	q.after = next
	if s.Checkpoint != nil && q.cfg.CheckpointDir != "" {
		if err := q.writeCheckpoint(s.Size, s.Checkpoint); err != nil {
			// Kept in the database all the same; the next one is written.
			q.cfg.Logger.Error("writing checkpoint to --checkpoint-dir failed", "size", s.Size, "err", err)
		}
	}
	return s, nil
}

// writeCheckpoint writes <size>.checkpoint and replaces checkpoint, each
// by a rename, so a reader never sees half a file.
func (q *Sequencer) writeCheckpoint(size int64, msg []byte) error {
	for _, name := range []string{strconv.FormatInt(size, 10) + ".checkpoint", "checkpoint"} {
		tmp, err := os.CreateTemp(q.cfg.CheckpointDir, ".checkpoint-*")
		if err != nil {
			return err
		}
		if _, err := tmp.Write(msg); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return err
		}
		if err := tmp.Close(); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		if err := os.Chmod(tmp.Name(), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), filepath.Join(q.cfg.CheckpointDir, name)); err != nil {
			os.Remove(tmp.Name())
			return err
		}
	}
	return nil
}

// Run steps every Interval (at once again after a full batch) until ctx
// ends. A failed step is logged and retried at the next tick.
func (q *Sequencer) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s, err := q.Step(ctx)
		if err != nil && ctx.Err() == nil {
			q.cfg.Logger.Error("log sequencer step failed", "err", err)
		}
		if s.Checkpoint != nil {
			q.cfg.Logger.Debug("checkpoint signed", "size", s.Size)
		}
		next := q.cfg.Interval
		if s.More {
			next = 0
		}
		t.Reset(next)
	}
}
