package jobsapi

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// StreamEvents serves GET /v1/jobs/{id}/events as Server-Sent Events: one
// "chunk" event per chunk with id = seq, then an "end" event with the final
// status. It resumes after Last-Event-ID (or from ?offset=). The stream is
// continuous: one request for the whole job, woken by LISTEN/NOTIFY.
func (s *Server) StreamEvents(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	offset, err := httpapi.ParseOffset("offset", r.URL.Query().Get("offset"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		// A seq is a PostgreSQL integer, and the stream resumes at seq+1:
		// a larger id would wrap around to a negative offset.
		n, err := strconv.ParseInt(last, 10, 32)
		if err != nil || n < 0 || n == math.MaxInt32 {
			s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_last_event_id", "Last-Event-ID must be a chunk seq, got %q", truncate(last, 64)))
			return
		}
		offset = int(n) + 1
	}
	tenant := principalFrom(r.Context()).Tenant
	p := stream.Params{Tenant: tenant, JobID: id, From: offset, Limit: s.cfg.PageSize, Wait: s.cfg.SSEKeepAlive}

	// Check the job exists before committing to a 200 event stream.
	first, err := s.reader.Read(r.Context(), stream.Params{Tenant: tenant, JobID: id, From: offset, Limit: s.cfg.PageSize})
	if err != nil {
		s.readError(w, r, err, id)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	snap := first
	// failing is when reads began to fail because the database is
	// unavailable (zero while they work): the stream stays open and
	// retries for up to sseRetryFor, so a PostgreSQL restart does not cut
	// it.
	var failing time.Time
	backoff := sseRetryMin
	for {
		// Each write may take up to a keep-alive interval plus slack; the
		// server's WriteTimeout would otherwise cut long streams.
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.SSEKeepAlive + 30*time.Second))
		buf := make([]byte, 0, 256*len(snap.Chunks)+64)
		for _, c := range snap.Chunks {
			buf = append(buf, "id: "...)
			buf = strconv.AppendInt(buf, int64(c.Seq), 10)
			buf = append(buf, "\nevent: chunk\ndata: "...)
			buf = appendChunk(buf, c, true)
			buf = append(buf, "\n\n"...)
			p.From = c.Seq + 1
		}
		if snap.Terminal() && !snap.More {
			end, _ := json.Marshal(map[string]any{"status": snap.Status, "finish_reason": snap.FinishReason, "next_offset": p.From})
			buf = append(buf, sseEvent("", "end", end)...)
			w.Write(buf)
			rc.Flush()
			return
		}
		if len(buf) == 0 {
			buf = append(buf, ": keep-alive\n\n"...)
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if s.drain.Draining() && !snap.More {
			// The server is shutting down: end the stream cleanly after
			// the events sent; the client resumes after the last event
			// id (Last-Event-ID) on another node.
			return
		}
		if snap.More {
			p.Wait = 0
		} else {
			p.Wait = s.cfg.SSEKeepAlive
		}
		snap, err = s.read(r.Context(), p)
		if err == nil {
			failing, backoff = time.Time{}, sseRetryMin
			continue
		}
		if r.Context().Err() != nil {
			return
		}
		if retryable(err) && !s.drain.Draining() {
			if failing.IsZero() {
				failing = time.Now()
				s.log.Warn("sse read: database unavailable; retrying", "job", id, "err", err)
			}
			if time.Since(failing) < sseRetryFor {
				// Nothing to send but a keep-alive (which also finds
				// out whether the client is still there).
				snap = store.Snapshot{}
				t := time.NewTimer(backoff)
				select {
				case <-r.Context().Done():
				case <-s.drain.Done():
				case <-t.C:
				}
				t.Stop()
				backoff = min(2*backoff, sseRetryMax)
				continue
			}
		}
		msg, _ := json.Marshal(map[string]string{"message": "reading the job failed; reconnect with Last-Event-ID"})
		w.Write(sseEvent("", "error", msg))
		rc.Flush()
		s.log.Warn("sse read", "job", id, "err", err)
		return
	}
}

// How an SSE stream rides out a database outage: it retries reads with
// backoff between sseRetryMin and sseRetryMax for up to sseRetryFor, then
// sends an "error" event and ends (the client reconnects with
// Last-Event-ID).
const (
	sseRetryMin = 100 * time.Millisecond
	sseRetryMax = 2 * time.Second
	sseRetryFor = time.Minute
)
