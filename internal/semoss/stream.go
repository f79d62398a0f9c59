package semoss

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// StreamMessage is one chunk in SEMOSS's envelope.
type StreamMessage struct {
	StreamType string          `json:"stream_type"`
	Data       json.RawMessage `json:"data"`
}

// StreamingResponse is the body of pixelJobStreaming. Offset is set only
// for reads that gave an offset: it is the one to send next.
type StreamingResponse struct {
	Status  string          `json:"status"`
	Message []StreamMessage `json:"message"`
	Offset  *int            `json:"offset,omitempty"`
}

func messagesOf(chunks []store.Chunk) []StreamMessage {
	out := make([]StreamMessage, len(chunks))
	for i, c := range chunks {
		out[i] = StreamMessage{StreamType: c.StreamType, Data: c.Data}
	}
	return out
}

var unknownJobStream = StreamingResponse{Status: SemossUnknownJob, Message: []StreamMessage{}}

// semossWait reads the wait field: seconds ("0.5") or a duration ("250ms"),
// SemossDefaultWait when absent, capped at Config.MaxWait.
func (s *Server) semossWait(f url.Values) (time.Duration, error) {
	d, err := httpapi.ParseWait("wait", f.Get("wait"), SemossDefaultWait, s.cfg.MaxWait)
	var ae *httpapi.APIError
	if errors.As(err, &ae) {
		return 0, semossErrorf(ae.Status, "InvalidWait", "%s", ae.Message)
	}
	return d, err
}

// PixelJobStreaming serves POST /engine/pixelJobStreaming:
// {"status":..,"message":[chunk..]}, always HTTP 200 for any job id
// (an unknown one, or another tenant's, is UnknownJob).
//
// With jobId alone (SEMOSS clients), each session has its own cursor in
// PostgreSQL, whichever node its polls reach, and a page stays
// unacknowledged until the session's next poll, which gets it again unless
// its answer was written completely (cursor.go says exactly what that
// guarantees). With offset=N the read is stateless, from chunk N, and the
// answer adds "offset", the next one to ask for. Either way, when nothing
// is new and the job goes on, it waits (the wait field, SemossDefaultWait
// by default) until a chunk arrives.
func (s *Server) PixelJobStreaming(w http.ResponseWriter, r *http.Request) {
	q, ok := s.semossPoll(w, r, unknownJobStream)
	if !ok {
		return
	}
	if q.form.Get("offset") != "" {
		s.streamFromOffset(w, r, q)
		return
	}
	ctx := r.Context()
	session, err := sessionOf(q.principal)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	k := pageKey{job: q.id, session: session}
	until := time.Now().Add(q.wait)
	// One round trip settles the page handed out before and hands out
	// what is new, with the status.
	page, err := s.pollCursor(ctx, q, k, until)
	if !s.semossReadOK(w, r, err, unknownJobStream) {
		return
	}
	if page.Verdict == store.VerdictBusy {
		// Another poll of the session is still answering: nothing for
		// this one yet.
		writeJSON(w, http.StatusOK, StreamingResponse{Status: SemossInProgress, Message: []StreamMessage{}})
		return
	}
	if len(page.Chunks) > 0 || page.Terminal() {
		s.sendPage(w, r, q, k, page)
		return
	}
	// Nothing new: wait, holding no connection, from where the session
	// stands; then hand out what came.
	snap, err := s.read(ctx, stream.Params{Tenant: q.tenant, JobID: q.id, From: page.From, Limit: 1, Wait: time.Until(until)})
	if err == nil && len(snap.Chunks) > 0 {
		page, err = s.pollCursor(ctx, q, k, until)
		if !s.semossReadOK(w, r, err, unknownJobStream) {
			return
		}
		if page.Verdict == store.VerdictBusy {
			writeJSON(w, http.StatusOK, StreamingResponse{Status: SemossInProgress, Message: []StreamMessage{}})
			return
		}
		s.sendPage(w, r, q, k, page)
		return
	}
	if !s.semossReadOK(w, r, err, unknownJobStream) {
		return
	}
	writeJSON(w, http.StatusOK, StreamingResponse{Status: s.streamingStatus(snap, page.Sync), Message: messagesOf(snap.Chunks)})
}

// streamingStatus is the status of a pixelJobStreaming answer with snap.
func (s *Server) streamingStatus(snap store.Snapshot, sync bool) string {
	if snap.More {
		return SemossInProgress
	}
	return semossStatusName(snap.Status, sync)
}

// semossPollRequest is what the polling routes (pixelJobStreaming,
// partial) read from a request: the job, the wait and the caller.
type semossPollRequest struct {
	form      url.Values
	principal httpapi.Principal
	tenant    string
	id        uuid.UUID
	wait      time.Duration
}

// semossPoll parses a polling request. When ok is false the answer is
// written: unknown for a missing or malformed job id, an error otherwise.
func (s *Server) semossPoll(w http.ResponseWriter, r *http.Request, unknown any) (q semossPollRequest, ok bool) {
	f, err := s.semossForm(w, r)
	if err != nil {
		s.writeSemossError(w, r, err)
		return q, false
	}
	p := principalFrom(r.Context())
	id, ok := formJobID(f)
	if !ok {
		writeJSON(w, http.StatusOK, unknown)
		return q, false
	}
	wait, err := s.semossWait(f)
	if err != nil {
		s.writeSemossError(w, r, err)
		return q, false
	}
	return semossPollRequest{form: f, principal: p, tenant: p.Tenant, id: id, wait: wait}, true
}

// semossCursor loads the caller's session cursor on the job. When ok is
// false the answer is written: unknown for a job the tenant cannot see.
func (s *Server) semossCursor(w http.ResponseWriter, r *http.Request, q semossPollRequest, unknown any) (session uuid.UUID, cur store.Cursor, ok bool) {
	session, err := sessionOf(q.principal)
	if err == nil {
		cur, err = s.store.CursorGet(r.Context(), q.tenant, q.id, session)
	}
	return session, cur, s.semossReadOK(w, r, err, unknown)
}

// semossReadOK reports whether err is nil; otherwise it writes the answer:
// unknown for a job the tenant cannot see, nothing once the client is
// gone, the error otherwise.
func (s *Server) semossReadOK(w http.ResponseWriter, r *http.Request, err error, unknown any) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusOK, unknown)
	case r.Context().Err() != nil:
	default:
		s.writeSemossError(w, r, err)
	}
	return false
}

func (s *Server) streamFromOffset(w http.ResponseWriter, r *http.Request, q semossPollRequest) {
	ctx := r.Context()
	tenant, id := q.tenant, q.id
	offset, err := httpapi.ParseOffset("offset", q.form.Get("offset"))
	if err != nil {
		s.writeSemossError(w, r, semossErrorf(http.StatusBadRequest, "InvalidOffset", "%v", err))
		return
	}
	snap, err := s.read(ctx, stream.Params{Tenant: tenant, JobID: id, From: offset, Limit: s.cfg.PageSize, Wait: q.wait})
	unknown := StreamingResponse{Status: SemossUnknownJob, Message: []StreamMessage{}, Offset: &offset}
	if !s.semossReadOK(w, r, err, unknown) {
		return
	}
	next := offset
	if n := len(snap.Chunks); n > 0 {
		next = snap.Chunks[n-1].Seq + 1
	}
	writeJSON(w, http.StatusOK, StreamingResponse{
		Status:  s.semossStatusOf(ctx, tenant, id, snap.Status, snap.More),
		Message: messagesOf(snap.Chunks),
		Offset:  &next,
	})
}

// PartialResponse is the body of /engine/partial. Message is {} until the
// job has text, then {"total":..,"new":..}.
type PartialResponse struct {
	Status  string `json:"status"`
	Message any    `json:"message"`
}

// PartialText is the message of /engine/partial once there is text.
type PartialText struct {
	Total string `json:"total"`
	New   string `json:"new"`
}

// Partial serves POST /engine/partial (deprecated in SEMOSS, used by
// the Python SDK's stream_ask): the job's text so far and the part of it
// new to this session. It long-polls like pixelJobStreaming, because the
// SDK calls it in a loop without sleeping.
func (s *Server) Partial(w http.ResponseWriter, r *http.Request) {
	unknown := PartialResponse{Status: SemossUnknownJob, Message: map[string]string{}}
	q, ok := s.semossPoll(w, r, unknown)
	if !ok {
		return
	}
	ctx := r.Context()
	session, cur, ok := s.semossCursor(w, r, q, unknown)
	if !ok {
		return
	}
	start := time.Now()
	_, err := s.read(ctx, stream.Params{Tenant: q.tenant, JobID: q.id, From: cur.Partial, Limit: 1, Wait: q.wait})
	var part store.Partial
	if err == nil {
		part, err = s.store.PartialRead(ctx, q.tenant, q.id, session)
	}
	if !s.semossReadOK(w, r, err, unknown) {
		return
	}
	if !part.Fresh && part.Total == "" && store.Terminal(part.Status) {
		// The SDK's loop ends only once it has seen text, so a job that
		// finished without any would have it spin: answer it no faster
		// than once per wait.
		if d := q.wait - time.Since(start); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-s.drain.Done():
				t.Stop()
			case <-t.C:
			}
		}
	}
	resp := PartialResponse{Status: s.semossStatusOf(ctx, q.tenant, q.id, part.Status, false), Message: map[string]string{}}
	if part.Total != "" {
		resp.Message = PartialText{Total: part.Total, New: part.New}
	}
	writeJSON(w, http.StatusOK, resp)
}

// Status serves POST /engine/status: the status as a bare JSON string.
func (s *Server) Status(w http.ResponseWriter, r *http.Request) {
	f, err := s.semossForm(w, r)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	status, err := s.jobStatus(r, f)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, status)
}

// jobStatus is the SEMOSS status of the request's jobId: UnknownJob for a
// missing, malformed, unknown or another tenant's job.
func (s *Server) jobStatus(r *http.Request, f url.Values) (string, error) {
	id, ok := formJobID(f)
	if !ok {
		return SemossUnknownJob, nil
	}
	tenant := principalFrom(r.Context()).Tenant
	job, err := s.store.Get(r.Context(), tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return SemossUnknownJob, nil
	}
	if err != nil {
		return "", err
	}
	return s.semossStatusOf(r.Context(), tenant, id, job.Status, false), nil
}

// ConsoleResponse is the body of /engine/console and /engine/error.
type ConsoleResponse struct {
	Status  string   `json:"status"`
	Message []string `json:"message"`
}

// Console serves POST /engine/console. Jobs print no console
// output: the lines are always empty.
func (s *Server) Console(w http.ResponseWriter, r *http.Request) {
	f, err := s.semossForm(w, r)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	status, err := s.jobStatus(r, f)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ConsoleResponse{Status: status, Message: []string{}})
}

// ErrorLines serves POST /engine/error: a failed job's error message,
// once per session (every time for a request without a session).
func (s *Server) ErrorLines(w http.ResponseWriter, r *http.Request) {
	f, err := s.semossForm(w, r)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	ctx := r.Context()
	p := principalFrom(ctx)
	id, ok := formJobID(f)
	if !ok {
		writeJSON(w, http.StatusOK, ConsoleResponse{Status: SemossUnknownJob, Message: []string{}})
		return
	}
	var (
		status string
		jobErr json.RawMessage
	)
	if session, serr := sessionOf(p); serr == nil {
		status, jobErr, err = s.store.CursorTakeError(ctx, p.Tenant, id, session)
	} else {
		var job store.Job
		job, err = s.store.Get(ctx, p.Tenant, id)
		status, jobErr = job.Status, job.Error
	}
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, ConsoleResponse{Status: SemossUnknownJob, Message: []string{}})
		return
	}
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	lines := []string{}
	if status == store.StatusFailed && len(jobErr) > 0 {
		var body struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(jobErr, &body)
		lines = append(lines, cmp.Or(body.Message, string(jobErr)))
	}
	writeJSON(w, http.StatusOK, ConsoleResponse{Status: s.semossStatusOf(ctx, p.Tenant, id, status, false), Message: lines})
}

// Terminate serves POST /engine/terminate. In SEMOSS it drops a
// job's buffered output; jobstream keeps output (it is stored, and other
// sessions may still read it), so it only answers "success".
func (s *Server) Terminate(w http.ResponseWriter, r *http.Request) {
	if _, err := s.semossForm(w, r); err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, "success")
}
