package stream

import (
	"context"
	"sync"
	"time"

	"github.com/jobstream/jobstream/internal/store"
)

// coalescer turns concurrent reads into few statements. A read joins the
// pending batch; up to maxInFlight statements run at once, and each takes
// every read pending when it starts (up to maxBatch), so when a
// notification wakes the readers of hundreds of jobs they are served by one
// statement (store.ReadMany) instead of hundreds. Identical pending
// requests (readers of the same job at the same offset) share one entry.
//
// A read only ever joins a batch that has not started: a statement already
// running may have taken its snapshot before the reader subscribed, and
// sharing its result could miss a chunk the reader was woken for.
type coalescer struct {
	readMany    func(ctx context.Context, reqs []store.ReadRequest) ([]store.ReadResult, error)
	maxInFlight int
	maxBatch    int
	timeout     time.Duration
	observe     func(pairs, rows int, d time.Duration, err error)
	// queued, when set, is called after a read joined the queue, with the
	// queue's length (a test signal).
	queued func(n int)

	mu       sync.Mutex
	pending  map[store.ReadRequest]*readCall
	queue    []*readCall
	inFlight int
}

type readCall struct {
	req  store.ReadRequest
	done chan struct{}
	res  store.ReadResult
}

func newCoalescer(readMany func(context.Context, []store.ReadRequest) ([]store.ReadResult, error), maxInFlight, maxBatch int, timeout time.Duration) *coalescer {
	return &coalescer{
		readMany:    readMany,
		maxInFlight: maxInFlight,
		maxBatch:    maxBatch,
		timeout:     timeout,
		pending:     map[store.ReadRequest]*readCall{},
	}
}

// read returns req's result, sharing a statement with other pending reads.
func (c *coalescer) read(ctx context.Context, req store.ReadRequest) (store.Snapshot, error) {
	c.mu.Lock()
	call, ok := c.pending[req]
	if !ok {
		call = &readCall{req: req, done: make(chan struct{})}
		c.pending[req] = call
		c.queue = append(c.queue, call)
		if c.inFlight < c.maxInFlight {
			c.inFlight++
			go c.run()
		}
	}
	n := len(c.queue)
	c.mu.Unlock()
	if c.queued != nil {
		c.queued(n)
	}
	select {
	case <-call.done:
		return call.res.Snapshot, call.res.Err
	case <-ctx.Done():
		// The statement goes on for the other readers sharing it.
		return store.Snapshot{}, ctx.Err()
	}
}

// run executes batches until none is pending.
func (c *coalescer) run() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), c.maxBatch)
		if n == 0 {
			c.inFlight--
			c.mu.Unlock()
			return
		}
		batch := c.queue[:n:n]
		c.queue = append([]*readCall(nil), c.queue[n:]...)
		for _, call := range batch {
			delete(c.pending, call.req)
		}
		c.mu.Unlock()
		c.execute(batch)
	}
}

func (c *coalescer) execute(batch []*readCall) {
	reqs := make([]store.ReadRequest, len(batch))
	for i, call := range batch {
		reqs[i] = call.req
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	start := time.Now()
	results, err := c.readMany(ctx, reqs)
	cancel()
	if c.observe != nil {
		rows := 0
		for _, r := range results {
			rows += len(r.Snapshot.Chunks)
		}
		c.observe(len(reqs), rows, time.Since(start), err)
	}
	for i, call := range batch {
		if err != nil {
			call.res = store.ReadResult{Err: err}
		} else {
			call.res = results[i]
		}
		close(call.done)
	}
}
