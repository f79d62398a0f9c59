package semoss

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
)

// Cursor mode (pixelJobStreaming with a job id and no offset) delivers a
// session's chunks through its cursor in PostgreSQL (store.CursorPoll): a
// page handed out stays unacknowledged until the session's next poll, which
// acknowledges it only if its answer was written to the connection
// completely and the client did not then reset the connection with it
// unread; otherwise the next poll gets the same chunks again. So every chunk
// reaches the session, in order, whatever happens to an answer on the way:
// a write that fails or times out, a client that gives up mid-answer, a
// server that dies between handing a page out and finishing its answer.
//
// The remaining window: SEMOSS clients send no acknowledgement, so an
// answer written to the connection completely and then lost without a
// reset from the client counts as delivered and is not sent again. That is
// an answer taken whole by a proxy (which reads every answer to the end)
// and then lost between the proxy and the client, or one a client read to
// the end of the socket and then lost (it crashed before using it, or
// closed the connection cleanly without reading). Offset mode has no such
// window: the client says where it stands.
const (
	// pageWriteTimeout bounds writing a page's answer: a client that does
	// not take it within this time gets it again on its next poll.
	pageWriteTimeout = 15 * time.Second
	// pageSendTimeout is how long a page's answer may stay unreported
	// before another poll of the session presumes its writer dead and
	// sends the page again: the write's own bound, plus time to record it.
	pageSendTimeout = pageWriteTimeout + 5*time.Second
	// cursorOpTimeout bounds each statement on a cursor: they lock its row.
	cursorOpTimeout = 5 * time.Second
	// evidenceWait bounds how long a session's next poll waits for the
	// connection that carried its previous answer to say whether the
	// client read it (OnSettled): a client that reset that connection and
	// polls again at once on a new one may be quicker than the server's
	// reader of the old connection. A client on one keep-alive connection
	// (every browser and SDK) settles it by sending the poll itself.
	evidenceWait = 250 * time.Millisecond
)

// pageKey is a session's cursor on a job.
type pageKey struct{ job, session uuid.UUID }

type pageState int

const (
	pageSending pageState = iota
	pageWritten
	pageUnread
)

type pageEntry struct {
	gen   int64
	state pageState
	// settled is closed when state leaves pageSending.
	settled chan struct{}
	// evidence, while not nil, is closed when the written answer's
	// connection says what became of it (httpapi.Delivery.OnSettled).
	evidence chan struct{}
}

// pages is what this process knows of the answers carrying its sessions'
// outstanding pages before the database does, so that a session's next
// poll on this node is not held up by (or ahead of) the statement
// recording an answer's fate: store.PollOptions' hints.
type pages struct {
	mu sync.Mutex
	m  map[pageKey]*pageEntry
}

// begin notes that page gen of k was handed out and is being written.
func (p *pages) begin(k pageKey, gen int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[pageKey]*pageEntry)
	}
	if old := p.m[k]; old != nil && old.state == pageSending {
		close(old.settled)
	}
	p.m[k] = &pageEntry{gen: gen, state: pageSending, settled: make(chan struct{})}
}

// settle notes the fate of page gen's answer. Unread overrides written; a
// fate of a page this process no longer tracks counts only when unread.
func (p *pages) settle(k pageKey, gen int64, state pageState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.m[k]
	if e == nil || e.gen != gen {
		if state != pageUnread {
			return
		}
		if p.m == nil {
			p.m = make(map[pageKey]*pageEntry)
		}
		e = &pageEntry{gen: gen, state: pageSending, settled: make(chan struct{})}
		p.m[k] = e
	}
	if e.state == pageSending {
		close(e.settled)
	}
	if e.state != pageUnread {
		e.state = state
	}
	if state == pageUnread && e.evidence != nil {
		close(e.evidence)
		e.evidence = nil
	}
}

// expectEvidence notes that page gen's written answer awaits its
// connection's evidence, and returns the function to call with it.
func (p *pages) expectEvidence(k pageKey, gen int64) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.m[k]
	if e == nil || e.gen != gen || e.state != pageWritten {
		return func() {}
	}
	ch := make(chan struct{})
	e.evidence = ch
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if e.evidence == ch {
			close(ch)
			e.evidence = nil
		}
	}
}

// pendingEvidence returns the channel closed when the written answer of
// k's outstanding page has its evidence, or nil when none is awaited.
func (p *pages) pendingEvidence(k pageKey) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.m[k]; e != nil && e.evidence != nil {
		return e.evidence
	}
	return nil
}

// forget drops page gen of k once the database holds its fate.
func (p *pages) forget(k pageKey, gen int64, state pageState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.m[k]; e != nil && e.gen == gen && e.state == state {
		delete(p.m, k)
	}
}

// hints returns the store.PollOptions hints for k, and the channel closed
// when the page being written settles (nil when none is).
func (p *pages) hints(k pageKey) (written, unread int64, settled <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.m[k]
	if e == nil {
		return 0, 0, nil
	}
	switch e.state {
	case pageWritten:
		return e.gen, 0, nil
	case pageUnread:
		return 0, e.gen, nil
	}
	return 0, 0, e.settled
}

// pollCursor polls the session's cursor (store.CursorPoll). While another
// poll of the session is still writing the page before (two tabs, or a
// client that gave up on a poll and asked again), it waits for that
// answer's fate, so that the page is acknowledged or sent again, never
// skipped nor sent twice: on this node until the writer settles it, on
// another until the database says or the page's deadline passes. It waits
// until the poll's own deadline at most (the wait the client asked for),
// and then returns the VerdictBusy page: nothing for the client yet.
func (s *Server) pollCursor(ctx context.Context, q semossPollRequest, k pageKey, until time.Time) (store.CursorPage, error) {
	if ev := s.pages.pendingEvidence(k); ev != nil {
		t := time.NewTimer(min(evidenceWait, max(time.Until(until), 0)))
		select {
		case <-ev:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	backoff := time.Millisecond
	for {
		written, unread, _ := s.pages.hints(k)
		pctx, cancel := context.WithTimeout(ctx, cursorOpTimeout)
		page, err := s.store.CursorPoll(pctx, q.tenant, k.job, k.session, s.cfg.PageSize, store.PollOptions{
			Written: written, Unread: unread, SendTimeout: pageSendTimeout,
		})
		cancel()
		if err != nil || page.Verdict != store.VerdictBusy {
			if err == nil && len(page.Chunks) > 0 {
				s.pages.begin(k, page.Gen)
			}
			return page, err
		}
		left := time.Until(until)
		if left <= 0 {
			return page, nil
		}
		_, _, settled := s.pages.hints(k)
		t := time.NewTimer(min(backoff, left))
		select {
		case <-settled:
		case <-t.C:
		case <-s.drain.Done():
			until = time.Now()
		case <-ctx.Done():
			t.Stop()
			return store.CursorPage{}, ctx.Err()
		}
		t.Stop()
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// sendPage answers a poll with the page CursorPoll handed out and records
// what became of the answer: written completely (the session's next poll
// acknowledges it), or not (the next poll gets the page again). The answer
// carries its Content-Length, so that "written completely" means every
// byte of it went to the connection.
func (s *Server) sendPage(w http.ResponseWriter, r *http.Request, q semossPollRequest, k pageKey, page store.CursorPage) {
	body, err := encodeJSON(StreamingResponse{Status: s.streamingStatus(page.Snapshot, page.Sync), Message: messagesOf(page.Chunks)})
	if err != nil {
		s.writeSemossError(w, r, err)
		if len(page.Chunks) > 0 {
			s.pageUnread(context.WithoutCancel(r.Context()), q.tenant, k, page.Gen)
		}
		return
	}
	if len(page.Chunks) == 0 {
		// A finished job with nothing left for the session: nothing to
		// acknowledge.
		_ = writeWhole(w, body)
		return
	}
	delivery := httpapi.WatchDelivery(r.Context())
	err = writeWhole(w, body)
	// The fate is recorded whatever became of the request (its context
	// ends when the client goes), under a deadline of its own.
	ctx := context.WithoutCancel(r.Context())
	if err != nil {
		s.log.Debug("pixelJobStreaming answer not written; the session's next poll gets the page again",
			"job", k.job, "chunks", len(page.Chunks), "err", err)
		s.pageUnread(ctx, q.tenant, k, page.Gen)
		return
	}
	s.pages.settle(k, page.Gen, pageWritten)
	evidence := s.pages.expectEvidence(k, page.Gen)
	if !delivery.OnSettled(func(unread bool) {
		if unread {
			s.log.Debug("pixelJobStreaming answer reset unread; the session's next poll gets the page again", "job", k.job, "chunks", len(page.Chunks))
			s.pageUnread(context.WithoutCancel(ctx), q.tenant, k, page.Gen)
		}
		evidence()
	}) {
		evidence() // no watched connection: nothing to wait for
	}
	rctx, cancel := context.WithTimeout(ctx, cursorOpTimeout)
	defer cancel()
	if _, err := s.store.CursorSent(rctx, q.tenant, k.job, k.session, page.Gen); err != nil {
		// This node still counts the page as written (pages); another
		// node sends it again once its deadline passes.
		s.log.Warn("recording a pixelJobStreaming answer as written failed", "job", k.job, "err", err)
		return
	}
	s.pages.forget(k, page.Gen, pageWritten)
}

// pageUnread records that page gen's answer did not reach the client.
func (s *Server) pageUnread(ctx context.Context, tenant string, k pageKey, gen int64) {
	s.pages.settle(k, gen, pageUnread)
	ctx, cancel := context.WithTimeout(ctx, cursorOpTimeout)
	defer cancel()
	if _, err := s.store.CursorUnsent(ctx, tenant, k.job, k.session, gen); err != nil {
		// This node still knows (pages); another node acknowledges the
		// page as written.
		s.log.Warn("recording a pixelJobStreaming answer as unread failed", "job", k.job, "err", err)
		return
	}
	s.pages.forget(k, gen, pageUnread)
}

// encodeJSON is httpapi.WriteJSON's encoding, into a buffer.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeWhole writes body as a 200 JSON answer with its Content-Length and
// flushes it, within pageWriteTimeout; nil means every byte went to the
// connection.
func writeWhole(w http.ResponseWriter, body []byte) error {
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Now().Add(pageWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
