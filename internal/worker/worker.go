// Package worker runs model calls: it claims queued jobs (FOR UPDATE SKIP
// LOCKED), holds a lease on each renewed by one batched heartbeat per
// process, streams each job's engine into the process-wide chunk Writer
// (fenced on the lease), writes the last chunk and terminal status in one
// transaction, and rescues jobs whose worker died. No transaction is ever
// open across a model call.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/chain"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/store"
)

// Defaults for Config.
const (
	DefaultConcurrency    = 256
	DefaultLeaseTTL       = 30 * time.Second
	DefaultPollInterval   = time.Second
	DefaultRescueInterval = 5 * time.Second
	DefaultShutdownGrace  = 10 * time.Second
	// DefaultMaxChunks is Config.MaxChunks's default: above the longest
	// outputs models give (a chunk is a token or a few), far below what
	// would let one job fill the database.
	DefaultMaxChunks = 100_000
	// DefaultMaxPromptBytes is Config.MaxPromptBytes's default: the API's
	// limit on a submitted prompt (httpapi.DefaultMaxPromptBytes).
	DefaultMaxPromptBytes = 512 << 10
	// DefaultMaxRuntime is Config.MaxRuntime's default: longer than any
	// model turn we know of (a long reasoning answer takes minutes), short
	// enough that a job that never ends frees its slot within the hour.
	DefaultMaxRuntime = time.Hour
)

// DefaultTenantCap is Config.TenantCap's default for a worker running
// concurrency jobs at once: three quarters of its slots, at least one. A
// tenant that floods the queue fills at most that share, so that the
// quarter left starts other tenants' jobs at once, without waiting for
// the flood's jobs to end (a claim never stops a running job).
func DefaultTenantCap(concurrency int) int { return max(1, concurrency*3/4) }

// Config configures a Worker.
type Config struct {
	// Owner names this process in leases. Defaults to a random id.
	Owner string
	// Concurrency is the number of jobs run at once. Defaults to 256.
	Concurrency int
	// LeaseTTL is how long a lease lasts without a heartbeat; a worker that
	// dies is detected after at most this long. After this process could
	// not reach the database, its rescuer waits one LeaseTTL before it
	// rescues anything, so live workers renew first. Defaults to 30 s.
	LeaseTTL time.Duration
	// HeartbeatInterval defaults to LeaseTTL/3.
	HeartbeatInterval time.Duration
	// PollInterval is how often to look for queued jobs without a
	// notification. Defaults to 1 s.
	PollInterval time.Duration
	// RescueInterval is how often to look for expired leases. Defaults to
	// 5 s (capped at LeaseTTL/2).
	RescueInterval time.Duration
	// ShutdownGrace is how long in-flight jobs may run on after shutdown
	// begins before they are stopped: handed back to the queue if they
	// have written no chunk yet, else failed. Defaults to 10 s.
	ShutdownGrace time.Duration
	// MaxChunks caps the chunks one job writes, its finish chunk included:
	// a model (or simulator) that streams on past it is stopped, and the
	// job completes with finish_reason "length". Defaults to 100,000.
	MaxChunks int
	// AdmitBacklog is admission control: while the chunk writer's backlog
	// (rows buffered, not committed yet) is above it, this node claims no
	// new jobs, so new work waits in the queue as queued instead of
	// slowing every running job down (and, past the writer's MaxPending,
	// failing them). Jobs already running are never stopped for it.
	// Defaults to 2 x Writer.MaxBatch (two commits behind); negative: no
	// admission control.
	AdmitBacklog int
	// TenantCap is the most jobs of one tenant this worker runs at once;
	// the tenant's other jobs wait queued for a slot under the cap, here
	// or on another node. Free slots go to tenants round robin: the one
	// with the fewest jobs running (on every node) first, then the oldest
	// job. 0: DefaultTenantCap(Concurrency); negative: no cap (round
	// robin only).
	TenantCap int
	// MaxRuntime bounds each attempt of a job: at MaxRuntime after its
	// claim the model call is stopped and the job fails with an error
	// finish chunk of type "timeout". The claim also records the deadline
	// in the database, where the rescuer of any node fails a job still
	// running a lease TTL past it (see store.RescueOverdue). Defaults to
	// DefaultMaxRuntime; negative: no bound.
	MaxRuntime time.Duration
	// MaxPromptBytes bounds the prompt a job's room history is added to:
	// only the latest turns that fit, with the request's own prompt, are
	// sent (see buildRequest). The server sets it to --max-prompt-bytes,
	// the limit on a submitted prompt. Defaults to DefaultMaxPromptBytes.
	MaxPromptBytes int
	// Writer configures the chunk writer.
	Writer WriterConfig
	// WriteMode selects the chunk writer: WriteBatched (group commit) or
	// WriteNaive (a transaction per chunk, for benchmarks). Defaults to
	// WriteBatched.
	WriteMode string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Worker claims and runs jobs.
type Worker struct {
	store   *store.Store
	engines *engine.Registry
	cfg     Config
	writer  ChunkWriter
	log     *slog.Logger

	wake chan struct{}
	// held, if set (tests), is called each time the claim loop holds new
	// jobs back because the writer's backlog is above AdmitBacklog.
	held func(backlog int)

	mu sync.Mutex
	// running is keyed by lease, not job id: after a lost lease this
	// process may claim the same job again while the old attempt is still
	// winding down, and each attempt must keep (and at its end remove)
	// only its own entry (issue 9).
	running map[store.Lease]*run
	// cancelSeen remembers cancel notices for jobs not (yet) running here,
	// closing the race between a claim and its cancel notification.
	cancelSeen map[uuid.UUID]time.Time

	// lastFailure is when a claim, heartbeat or rescue last failed (unix
	// nanoseconds; 0: never). See rescueLoop.
	lastFailure atomic.Int64

	// Set only by tests (before Run): afterHeartbeat runs after every
	// heartbeat, jobDone when an attempt has ended.
	afterHeartbeat func(held []store.HeartbeatResult, err error)
	jobDone        func(store.Lease)
	// claimed, if set (tests, before Run), sees every batch of claims.
	claimed func([]store.Claim)
}

type run struct {
	cancel context.CancelCauseFunc
}

var (
	errCancelRequested = errors.New("cancel requested")
	errLeaseLost       = errors.New("lease lost")
	errShutdown        = errors.New("worker shutting down")
	// errChunkCap: the job reached Config.MaxChunks.
	errChunkCap = errors.New("the job reached its chunk cap")
)

// maxRuntimeError is the cause of a job's cancellation at Config.MaxRuntime.
type maxRuntimeError struct{ after time.Duration }

func (e maxRuntimeError) Error() string {
	return fmt.Sprintf("the job ran for its maximum runtime of %s and was stopped", e.after)
}

// New returns a Worker.
func New(s *store.Store, engines *engine.Registry, cfg Config) *Worker {
	if cfg.Owner == "" {
		cfg.Owner = "worker-" + uuid.NewString()[:8]
	}
	cfg.Concurrency = cmpOr(cfg.Concurrency, DefaultConcurrency)
	cfg.LeaseTTL = cmpOr(cfg.LeaseTTL, DefaultLeaseTTL)
	cfg.HeartbeatInterval = cmpOr(cfg.HeartbeatInterval, cfg.LeaseTTL/3)
	cfg.PollInterval = cmpOr(cfg.PollInterval, DefaultPollInterval)
	cfg.RescueInterval = min(cmpOr(cfg.RescueInterval, DefaultRescueInterval), max(cfg.LeaseTTL/2, 10*time.Millisecond))
	cfg.ShutdownGrace = cmpOr(cfg.ShutdownGrace, DefaultShutdownGrace)
	cfg.MaxChunks = max(cmpOr(cfg.MaxChunks, DefaultMaxChunks), 2)
	cfg.TenantCap = cmpOr(cfg.TenantCap, DefaultTenantCap(cfg.Concurrency))
	cfg.MaxRuntime = cmpOr(cfg.MaxRuntime, DefaultMaxRuntime)
	cfg.MaxPromptBytes = cmpOr(cfg.MaxPromptBytes, DefaultMaxPromptBytes)
	cfg.AdmitBacklog = cmpOr(cfg.AdmitBacklog, 2*cmpOr(cfg.Writer.MaxBatch, DefaultMaxBatch))
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var cw ChunkWriter = NewWriter(s, cfg.Owner, cfg.Writer)
	if cfg.WriteMode == WriteNaive {
		cw = NewNaiveWriter(s, cfg.Owner, cfg.Writer)
	}
	return &Worker{
		store:      s,
		engines:    engines,
		cfg:        cfg,
		writer:     cw,
		log:        cfg.Logger,
		wake:       make(chan struct{}, 1),
		running:    map[store.Lease]*run{},
		cancelSeen: map[uuid.UUID]time.Time{},
	}
}

// Owner is the lease owner name of this worker.
func (w *Worker) Owner() string { return w.cfg.Owner }

// Writer is the worker's chunk writer.
func (w *Worker) Writer() ChunkWriter { return w.writer }

// Running is the number of jobs running now.
func (w *Worker) Running() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running)
}

// Wake makes the claim loop look for jobs now (a job was queued).
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// JobsHandler wakes the claim loop on ChannelJobs notifications.
func (w *Worker) JobsHandler() notifyHandler {
	return notifyHandler{onNote: func(string) { w.Wake() }, onBacklog: w.Wake}
}

// CancelHandler stops jobs named on ChannelCancel.
func (w *Worker) CancelHandler() notifyHandler {
	return notifyHandler{onNote: func(p string) {
		for _, id := range store.ParseIDs(p) {
			w.Cancel(id)
		}
	}}
}

// Cancel stops a job running here because its cancellation was requested.
func (w *Worker) Cancel(id uuid.UUID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	found := false
	for l, r := range w.running {
		if l.JobID == id {
			r.cancel(errCancelRequested)
			found = true
		}
	}
	if !found {
		w.cancelSeen[id] = time.Now()
	}
}

// notifyHandler adapts closures to notify.Handler without importing it
// here (the worker does not depend on the listener).
type notifyHandler struct {
	onNote    func(payload string)
	onBacklog func()
}

func (h notifyHandler) HandleNotification(_ context.Context, n *pgconn.Notification) {
	h.onNote(n.Payload)
}

func (h notifyHandler) HandleBacklog(context.Context) {
	if h.onBacklog != nil {
		h.onBacklog()
	}
}

// Run claims and runs jobs until ctx is done. Then it stops claiming, lets
// in-flight jobs finish for up to ShutdownGrace, and stops the rest: a job
// that has written no chunk yet is handed back to the queue (another node
// runs it; the hand-back does not count against its attempts), any other
// ends failed with an error chunk, so readers see a clean end. Then it
// flushes the writer and returns.
func (w *Worker) Run(ctx context.Context) error {
	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); w.writer.Run(writerCtx, 5*time.Second) }()

	jobsCtx, stopJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	// Heartbeats go on until the last job has ended, not until shutdown
	// begins: a job finishing during ShutdownGrace (which may exceed
	// LeaseTTL) must keep its lease, or another node's rescuer fails it.
	loopCtx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	bg.Add(2)
	go func() { defer bg.Done(); w.heartbeatLoop(loopCtx) }()
	go func() { defer bg.Done(); w.rescueLoop(loopCtx) }()

	var jobs sync.WaitGroup
	slots := make(chan struct{}, w.cfg.Concurrency)
	w.claimLoop(ctx, jobsCtx, slots, &jobs)

	// Shutdown: wait for in-flight jobs, then stop them.
	done := make(chan struct{})
	go func() { jobs.Wait(); close(done) }()
	t := time.NewTimer(w.cfg.ShutdownGrace)
	select {
	case <-done:
	case <-t.C:
		stopJobs(errShutdown)
		<-done
	}
	t.Stop()
	stopJobs(errShutdown)
	stopLoops()
	stopWriter()
	bg.Wait()
	return nil
}

func (w *Worker) claimLoop(ctx, jobsCtx context.Context, slots chan struct{}, jobs *sync.WaitGroup) {
	freed := make(chan struct{}, 1)
	for ctx.Err() == nil {
		free := cap(slots) - len(slots)
		got := 0
		// The commit channel first, then the backlog: a commit between
		// the two still wakes the loop.
		var committed <-chan struct{}
		if free > 0 && w.cfg.AdmitBacklog >= 0 {
			committed = w.writer.Committed()
			if n := w.writer.Pending(); n > w.cfg.AdmitBacklog {
				free = 0
				if w.held != nil {
					w.held(n)
				}
			} else {
				committed = nil
			}
		}
		if free > 0 {
			claims, err := w.store.ClaimWith(ctx, store.ClaimOptions{
				Owner: w.cfg.Owner, Max: free, LeaseTTL: w.cfg.LeaseTTL,
				TenantCap: w.cfg.TenantCap, MaxRuntime: w.cfg.MaxRuntime,
			})
			if err != nil && ctx.Err() == nil {
				w.failed()
				w.log.Warn("claim jobs", "err", err)
			}
			got = len(claims)
			if w.claimed != nil {
				w.claimed(claims)
			}
			for _, c := range claims {
				slots <- struct{}{}
				jobs.Add(1)
				go func() {
					defer jobs.Done()
					w.runJob(jobsCtx, c)
					<-slots
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
			}
		}
		if got > 0 {
			// There may be more queued: a batch can come back short of
			// the free slots while jobs wait, when the tenants' shares
			// were locked by another worker's claim or a tenant had
			// fewer jobs than its share.
			continue
		}
		t := time.NewTimer(w.cfg.PollInterval)
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-freed:
		case <-committed:
		case <-t.C:
		}
		t.Stop()
	}
}

// failed records that a hot-path database operation failed.
func (w *Worker) failed() { w.lastFailure.Store(time.Now().UnixNano()) }

// heartbeatLoop renews this process's leases every HeartbeatInterval. A
// beat that failed, or left a lease unrenewed because its row was locked,
// is retried sooner, with backoff: after an outage the owners renew their
// leases before any rescuer may take them (see rescueLoop).
func (w *Worker) heartbeatLoop(ctx context.Context) {
	t := time.NewTimer(w.cfg.HeartbeatInterval)
	defer t.Stop()
	retry := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.heartbeat(ctx) {
			retry = 0
			t.Reset(w.cfg.HeartbeatInterval)
			continue
		}
		retry = min(max(2*retry, 50*time.Millisecond), w.cfg.HeartbeatInterval)
		t.Reset(time.Duration(float64(retry) * (0.75 + 0.5*rand.Float64())))
	}
}

// heartbeat renews every lease held here in one statement, under a
// deadline, and stops the jobs whose lease was lost or whose cancellation
// was requested. It reports whether every lease was renewed.
func (w *Worker) heartbeat(ctx context.Context) (ok bool) {
	w.mu.Lock()
	leases := make([]store.Lease, 0, len(w.running))
	for l := range w.running {
		leases = append(leases, l)
	}
	for id, at := range w.cancelSeen {
		if time.Since(at) > time.Minute {
			delete(w.cancelSeen, id)
		}
	}
	w.mu.Unlock()
	if len(leases) == 0 {
		return true
	}
	hctx, cancel := context.WithTimeout(ctx, w.heartbeatTimeout())
	held, err := w.store.Heartbeat(hctx, w.cfg.Owner, w.cfg.LeaseTTL, leases)
	cancel()
	if w.afterHeartbeat != nil {
		defer w.afterHeartbeat(held, err)
	}
	if err != nil {
		// Leases keep running until their TTL; the retry comes soon.
		if ctx.Err() == nil {
			w.failed()
			w.log.Warn("heartbeat", "err", err)
		}
		if held == nil {
			return false
		}
		// The first statement answered (Store.Heartbeat): its results
		// still say which leases are lost or to be cancelled.
	}
	ok = err == nil
	w.mu.Lock()
	defer w.mu.Unlock()
	found := make(map[store.Lease]bool, len(held))
	for _, h := range held {
		found[h.Lease] = true
		ok = ok && h.Renewed
		if r, running := w.running[h.Lease]; running && h.CancelRequested {
			r.cancel(errCancelRequested)
		}
	}
	for _, l := range leases {
		if r, running := w.running[l]; running && !found[l] {
			r.cancel(errLeaseLost)
		}
	}
	return ok
}

// heartbeatTimeout is how long one heartbeat may take before it gives up
// and is retried: half the interval, between 1 s and the store's
// configured hot operation timeout, so that a stuck beat is retried well
// within the TTL.
func (w *Worker) heartbeatTimeout() time.Duration {
	return min(max(w.cfg.HeartbeatInterval/2, time.Second), w.store.HotOperationTimeout())
}

// rescueLoop rescues expired leases every RescueInterval, but only once
// this process has reached the database without a failure for a whole
// LeaseTTL. A lease that expired while the database was unreachable (an
// outage or restart longer than the TTL) most likely belongs to a live
// worker that could not renew it either: it gets one full TTL to do so
// after the database is back before its jobs are rescued, so only jobs
// whose worker is really gone are failed or requeued (issue 9: 7 of 20
// healthy jobs failed with lease_expired after a 7 s outage at a 3 s
// TTL). The store makes the same rule hold across a database restart for
// rescuers that never noticed the outage (JobExpiredLock).
func (w *Worker) rescueLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.RescueInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if last := w.lastFailure.Load(); last != 0 && time.Since(time.Unix(0, last)) < w.cfg.LeaseTTL {
			continue
		}
		res, err := w.store.RescueExpired(store.WithActor(ctx, store.Actor{Name: "rescuer:" + w.cfg.Owner}), 100, w.cfg.LeaseTTL)
		if err != nil {
			if ctx.Err() == nil {
				w.failed()
				w.log.Warn("rescue expired jobs", "err", err)
			}
			continue
		}
		if n := len(res.Requeued) + len(res.Failed); n > 0 {
			w.log.Info("rescued jobs with expired leases", "requeued", len(res.Requeued), "failed", len(res.Failed))
			if len(res.Requeued) > 0 {
				w.Wake()
			}
		}
		// Jobs past their deadline by a whole lease TTL: their worker had
		// that long to stop them itself.
		overdue, err := w.store.RescueOverdue(store.WithActor(ctx, store.Actor{Name: "rescuer:" + w.cfg.Owner}), 100, w.cfg.LeaseTTL)
		if err != nil {
			if ctx.Err() == nil {
				w.failed()
				w.log.Warn("rescue overdue jobs", "err", err)
			}
			continue
		}
		if len(overdue) > 0 {
			w.log.Warn("failed jobs running past their maximum runtime", "failed", len(overdue))
		}
	}
}

// runJob streams one claimed job to its end.
func (w *Worker) runJob(parent context.Context, c store.Claim) {
	if w.cfg.MaxRuntime > 0 {
		// The bound is on the whole attempt (model call, the wait for
		// room in the writer, the history read), measured from here, just
		// after the claim set the database's deadline: the worker ends the
		// job before the rescuer would.
		var stop context.CancelFunc
		parent, stop = context.WithTimeoutCause(parent, w.cfg.MaxRuntime, maxRuntimeError{after: w.cfg.MaxRuntime})
		defer stop()
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	w.mu.Lock()
	w.running[c.Lease] = &run{cancel: cancel}
	if _, seen := w.cancelSeen[c.JobID]; seen || c.CancelRequested {
		delete(w.cancelSeen, c.JobID)
		cancel(errCancelRequested)
	}
	w.mu.Unlock()
	feed := w.cfg.Writer.Feed
	if w.cfg.WriteMode == WriteNaive {
		feed = nil // the naive writer publishes nothing
	}
	if feed != nil {
		feed.Open(c.Lease, c.Tenant, c.NextSeq)
	}
	defer func() {
		if feed != nil {
			feed.Close(c.Lease)
		}
		w.mu.Lock()
		delete(w.running, c.Lease)
		w.mu.Unlock()
		w.writer.Release(c.Lease)
		if w.jobDone != nil {
			w.jobDone(c.Lease)
		}
	}()

	j := &jobRun{w: w, claim: c, seq: c.NextSeq, tip: c.ChainTip, feed: feed}
	finish, err := j.stream(ctx)
	j.end(ctx, finish, err)
}

type jobRun struct {
	w     *Worker
	claim store.Claim
	seq   int
	// tip is the chain hash of chunk seq-1, kept here so that the hash
	// chain costs one SHA-256 per chunk in the job's own goroutine and no
	// database read.
	tip   chain.Hash
	usage json.RawMessage
	// feed is the worker's Feed, nil without one.
	feed Feed
}

// chunk is the next chunk of the job, with its chain hash.
func (j *jobRun) chunk(streamType string, data json.RawMessage) (store.NewChunk, chain.Hash) {
	c := store.NewChunk{Lease: j.claim.Lease, Seq: j.seq, StreamType: streamType, Data: data}
	h := c.ChainHash(j.tip)
	c.Hash = h[:]
	return c, h
}

func (j *jobRun) stream(ctx context.Context) (engine.Finish, error) {
	if err := context.Cause(ctx); err != nil {
		return engine.Finish{}, err
	}
	eng, err := j.w.engines.Get(j.claim.Engine)
	if err != nil {
		return engine.Finish{}, &engine.Error{Type: "invalid_request", Message: err.Error()}
	}
	req, err := j.w.buildRequest(ctx, j.claim)
	if err != nil {
		return engine.Finish{}, err
	}
	return eng.Stream(ctx, req, func(c engine.Chunk) error { return j.emit(ctx, c) })
}

func (j *jobRun) emit(ctx context.Context, c engine.Chunk) error {
	if c.StreamType == engine.StreamUsage {
		j.usage = c.Data
	}
	if j.seq >= j.w.cfg.MaxChunks-1 {
		// Keep the last seq for the finish chunk.
		return errChunkCap
	}
	nc, h := j.chunk(c.StreamType, c.Data)
	if err := j.w.writer.Append(ctx, nc); err != nil {
		return err
	}
	j.seq, j.tip = j.seq+1, h
	return nil
}

// end writes the job's last chunk and terminal status together.
func (j *jobRun) end(ctx context.Context, finish engine.Finish, err error) {
	cause := context.Cause(ctx)
	f := store.Finish{Lease: j.claim.Lease, Usage: j.usage}
	var last engine.Chunk
	switch {
	case errors.Is(cause, errLeaseLost) || errors.Is(err, store.ErrLeaseLost):
		// Someone else owns the job now; write nothing.
		return
	case err == nil:
		f.Status, f.FinishReason = store.StatusCompleted, engine.Normalized(finish.Reason)
		stream := finish.Stream
		if stream == "" {
			stream = engine.StreamContent
		}
		last = engine.NewChunk(stream, map[string]string{"finish_reason": finish.Reason})
	case errors.Is(err, errChunkCap):
		f.Status, f.FinishReason = store.StatusCompleted, engine.FinishLength
		last = engine.NewChunk(engine.StreamContent, map[string]string{"finish_reason": engine.FinishLength})
	case errors.Is(cause, errCancelRequested):
		f.Status, f.FinishReason = store.StatusCancelled, engine.FinishCancelled
		last = engine.NewChunk(engine.StreamContent, map[string]string{"finish_reason": engine.FinishCancelled})
	case errors.Is(cause, errShutdown) && j.claim.NextSeq == 0 && j.seq == 0 && j.handBack(ctx):
		// Stopped at shutdown before the model wrote anything: nothing a
		// reader has seen would be replayed, so the job went back to the
		// queue for another node rather than failing (if it could not,
		// the default case fails it).
		return
	default:
		e := errorBody(err, cause)
		f.Status, f.FinishReason, f.Error = store.StatusFailed, engine.FinishError, mustJSON(e)
		last = engine.NewChunk(engine.StreamContent, map[string]any{"finish_reason": engine.FinishError, "error": e})
	}
	// The terminal write must outlive the job's cancellation.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	nc, _ := j.chunk(last.StreamType, last.Data)
	werr := j.w.writer.Finish(wctx, nc, f)
	if werr != nil && !errors.Is(werr, store.ErrLeaseLost) {
		j.w.log.Warn("finish job", "job", j.claim.JobID, "err", werr)
	}
}

// handBack returns the job to the queue and reports whether the job is
// taken care of: handed back, or left for a rescuer to requeue once its
// lease expires when the database is unreachable. On false (the lease is
// gone) the caller fails the job, a write the fence turns into a no-op.
func (j *jobRun) handBack(ctx context.Context) bool {
	if j.feed != nil {
		// Before the job is queued again: no reader may be told it is
		// running once it is not (closing early only sends readers to
		// PostgreSQL).
		j.feed.Close(j.claim.Lease)
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := j.w.store.HandBack(hctx, j.w.cfg.Owner, j.claim.Lease)
	switch {
	case err == nil:
		j.w.log.Info("handed job back to the queue at shutdown", "job", j.claim.JobID)
		return true
	case errors.Is(err, store.ErrLeaseLost):
		// Another node owns it now, or it has chunks after all (failing
		// it then is the writer's fenced finish, which is a no-op if the
		// lease is gone).
		return false
	default:
		// The database is unreachable: so is any terminal write. The
		// lease expires and a rescuer requeues the job (it has no chunk).
		j.w.log.Warn("hand back job", "job", j.claim.JobID, "err", err)
		return true
	}
}

type errorInfo struct {
	Message string `json:"message"`
	Type    string `json:"type"`
}

func errorBody(err, cause error) errorInfo {
	var ee *engine.Error
	switch {
	case errors.Is(cause, errShutdown):
		return errorInfo{Message: "the worker shut down before the job finished", Type: "shutdown"}
	case errors.As(cause, new(maxRuntimeError)):
		return errorInfo{Message: cause.Error(), Type: store.ErrorTypeTimeout}
	case errors.As(err, &ee):
		return errorInfo{Message: ee.Message, Type: ee.Type}
	case errors.Is(err, ErrOverloaded):
		return errorInfo{Message: err.Error(), Type: "overloaded"}
	default:
		return errorInfo{Message: err.Error(), Type: "internal_error"}
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err))
	}
	return b
}
