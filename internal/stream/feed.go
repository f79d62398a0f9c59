package stream

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/store"
)

// Defaults for Feed.
const (
	// DefaultFeedKeep is how many of a job's latest chunks a Feed keeps
	// at least (at most twice as many, trimmed in steps): a reader
	// further behind reads PostgreSQL. At 50 tokens/s it is five seconds
	// of output.
	DefaultFeedKeep = 256
	// DefaultFeedTrust is how long after its last commit (or its claim)
	// a Feed answers "nothing new" for a job without asking PostgreSQL.
	DefaultFeedTrust = time.Second
)

// Feed serves readers in this process from what this process's chunk
// writer has just committed, so that most reads of a running job cost no
// statement: the writer hands each commit to Committed, which keeps the
// latest chunks of every job running here and wakes their readers at once.
// Readers of other nodes, readers that fell behind what is kept, and reads
// of jobs not running here go to PostgreSQL as before (Reader.Read).
//
// What a Feed answers is always what PostgreSQL holds: chunks are
// immutable once committed and only the lease holder appends them, so
// while this process holds a job's lease, the chunks committed through its
// writer are the job's chunks, and "nothing past offset N" is true up to
// the last commit. It is trusted for that only for Trust after the job's
// last commit: a job whose lease was lost without this process noticing
// yet (another node's rescuer failed it) reads PostgreSQL again within
// Trust: a waiting reader told "nothing new" sleeps no longer than the end
// of the job's Trust before it reads PostgreSQL, even when the wake-up
// another node's commit sent was spent on the Feed. The terminal status
// is never answered from memory: a commit that
// finishes a job closes its entry, and its readers read the final chunk
// and status from PostgreSQL.
type Feed struct {
	hub   *notify.Hub
	keep  int
	trust time.Duration
	now   func() time.Time

	mu   sync.Mutex
	jobs map[uuid.UUID]*feedJob
}

type feedJob struct {
	tenant  string
	attempt int
	// lo is the seq of chunks[0]; hi (lo + len(chunks)) the next seq.
	lo     int
	chunks []store.Chunk
	// confirmed is when the lease was last known held (a commit, or the
	// claim).
	confirmed time.Time
}

func (j *feedJob) hi() int { return j.lo + len(j.chunks) }

// FeedConfig configures a Feed.
type FeedConfig struct {
	// Keep is how many of a job's latest chunks are kept. Defaults to
	// DefaultFeedKeep.
	Keep int
	// Trust is how long after a job's last commit the Feed answers
	// "nothing new" by itself. Defaults to DefaultFeedTrust.
	Trust time.Duration
}

// NewFeed returns a Feed that wakes the readers of hub. hub must not be nil.
func NewFeed(hub *notify.Hub, cfg FeedConfig) *Feed {
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultFeedKeep
	}
	if cfg.Trust <= 0 {
		cfg.Trust = DefaultFeedTrust
	}
	return &Feed{hub: hub, keep: cfg.Keep, trust: cfg.Trust, now: time.Now, jobs: map[uuid.UUID]*feedJob{}}
}

// Open starts keeping the chunks of a job claimed by this process, whose
// next chunk is next. It replaces any entry of an earlier attempt.
func (f *Feed) Open(l store.Lease, tenant string, next int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[l.JobID] = &feedJob{tenant: tenant, attempt: l.Attempt, lo: next, confirmed: f.now()}
}

// Close stops keeping the job's chunks (its run ended) and wakes its
// readers, which then read PostgreSQL.
func (f *Feed) Close(l store.Lease) {
	f.mu.Lock()
	j := f.jobs[l.JobID]
	if j == nil || j.attempt != l.Attempt {
		f.mu.Unlock()
		return
	}
	delete(f.jobs, l.JobID)
	f.mu.Unlock()
	f.hub.Wake(l.JobID)
}

// Committed records one commit of the writer: rows are the chunks it
// stored (only those of leases it held, in seq order within each job),
// at their created_at; closed are leases the commit finished or found
// lost. It wakes the readers of every job concerned.
func (f *Feed) Committed(rows []store.NewChunk, closed []store.Lease, at time.Time) {
	if len(rows) == 0 && len(closed) == 0 {
		return
	}
	woken := make([]uuid.UUID, 0, len(closed)+len(rows)/2)
	f.mu.Lock()
	now := f.now()
	var last uuid.UUID // rows of one job often follow each other: wake it once
	for _, c := range rows {
		j := f.jobs[c.JobID]
		if j == nil || j.attempt != c.Attempt {
			continue
		}
		if c.Seq != j.hi() {
			// Not the next chunk (cannot happen while this process
			// writes the job alone): forget the job, so its readers
			// read PostgreSQL rather than trust a gap.
			delete(f.jobs, c.JobID)
			woken = append(woken, c.JobID)
			continue
		}
		if len(j.chunks) >= 2*f.keep {
			j.lo += len(j.chunks) - f.keep + 1
			j.chunks = append(make([]store.Chunk, 0, 2*f.keep), j.chunks[len(j.chunks)-f.keep+1:]...)
		}
		j.chunks = append(j.chunks, c.Stored(at))
		j.confirmed = now
		if c.JobID != last {
			woken = append(woken, c.JobID)
			last = c.JobID
		}
	}
	for _, l := range closed {
		if j := f.jobs[l.JobID]; j != nil && j.attempt == l.Attempt {
			delete(f.jobs, l.JobID)
			woken = append(woken, l.JobID)
		}
	}
	f.mu.Unlock()
	f.hub.Wake(woken...)
}

// read answers p from memory when it can: the job runs here, for
// p.Tenant, and p.From is within what is kept or just past it (then with
// no chunks: nothing new, and until is when that stops being trusted).
// ok is false when PostgreSQL must be asked.
func (f *Feed) read(p Params) (snap store.Snapshot, until time.Time, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[p.JobID]
	if j == nil || j.tenant != p.Tenant || p.From < j.lo || p.From > j.hi() || p.Limit <= 0 {
		return store.Snapshot{}, time.Time{}, false
	}
	if p.From == j.hi() {
		until = j.confirmed.Add(f.trust)
		if !f.now().Before(until) {
			return store.Snapshot{}, time.Time{}, false
		}
		return store.Snapshot{Status: store.StatusRunning}, until, true
	}
	part := j.chunks[p.From-j.lo:]
	more := false
	if len(part) > p.Limit {
		part, more = part[:p.Limit], true
	}
	return store.Snapshot{Status: store.StatusRunning, Chunks: append([]store.Chunk(nil), part...), More: more}, time.Time{}, true
}

// Len is the number of jobs the Feed keeps chunks of.
func (f *Feed) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.jobs)
}
