package semoss

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/pixel"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// PixelResponse is the body of runPixel and /engine/result.
type PixelResponse struct {
	InsightID   string        `json:"insightID"`
	PixelReturn []PixelReturn `json:"pixelReturn"`
}

// PixelReturn is the outcome of one pixel.
type PixelReturn struct {
	PixelID         string `json:"pixelId"`
	PixelExpression string `json:"pixelExpression"`
	IsMeta          bool   `json:"isMeta"`
	// TimeToRun is in milliseconds.
	TimeToRun int64 `json:"timeToRun"`
	// Output is the pixel's result; for an error, its message.
	Output        any      `json:"output"`
	OperationType []string `json:"operationType"`
}

// LLMOutput is the output of an LLM pixel.
type LLMOutput struct {
	// Response is the text, or for a tool-call turn (MessageType "TOOL")
	// the list of calls ([]ToolCallOutput).
	Response                 any    `json:"response"`
	NumberOfTokensInPrompt   int64  `json:"numberOfTokensInPrompt"`
	NumberOfTokensInResponse int64  `json:"numberOfTokensInResponse"`
	MessageID                string `json:"messageId"`
	RoomID                   string `json:"roomId"`
	MessageType              string `json:"messageType"`
}

// ToolCallOutput is one tool call of a TOOL response. Arguments is the
// JSON text of the arguments, as the model wrote it.
type ToolCallOutput struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Operation types of pixelReturn entries.
var (
	opOperation     = []string{"OPERATION"}
	opError         = []string{"ERROR"}
	opInvalidSyntax = []string{"ERROR", "INVALID_SYNTAX"}
)

// insightOf returns the insight a request runs in: the given one, or a new
// one for "", "new" and the "undefined"/"null" that JavaScript clients send.
func insightOf(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "", "new", "undefined", "null":
		return uuid.NewString(), nil
	}
	if len(v) > 256 {
		return "", semossErrorf(http.StatusBadRequest, "InvalidInsightId", "insightId is longer than 256 bytes")
	}
	if err := store.CheckText("insightId", v); err != nil {
		return "", semossErrorf(http.StatusBadRequest, "InvalidInsightId", "%v", err)
	}
	return v, nil
}

// pixelError is the pixelReturn entry of an expression that does not parse
// or that jobstream does not run.
func pixelError(expr string, err error) PixelReturn {
	e := PixelReturn{PixelID: "1", PixelExpression: expr, OperationType: opError, Output: pixelErrorMessage(err)}
	var se *pixel.SyntaxError
	if errors.As(err, &se) {
		e.OperationType = opInvalidSyntax
	}
	return e
}

func pixelErrorMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "pixel: ")
	if errors.Is(err, pixel.ErrUnsupported) {
		msg += `; jobstream runs LLM(...), META | true and StopPixelExecution(id=["<jobId>"])`
	}
	return msg
}

// RunPixel serves POST /engine/runPixel: it runs each pixel of the
// expression in turn and answers with their outcomes. An LLM pixel is a job
// like any other (stored, streamable), whose end runPixel waits for, up to
// SemossSyncWait. Bad input is an ERROR entry, never an HTTP error.
func (s *Server) RunPixel(w http.ResponseWriter, r *http.Request) {
	f, err := s.semossForm(w, r)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	insight, err := insightOf(f.Get("insightId"))
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	expr := f.Get("expression")
	pixels, err := pixel.Parse(expr)
	if errors.Is(err, pixel.ErrTooMany) {
		// More work than one request may ask for: refused whole.
		s.writeSemossError(w, r, semossErrorf(http.StatusBadRequest, "TooMany", "%s", pixelErrorMessage(err)))
		return
	}
	if err != nil {
		writeJSON(w, http.StatusOK, PixelResponse{InsightID: insight, PixelReturn: []PixelReturn{pixelError(expr, err)}})
		return
	}
	if s.drain.Draining() && slices.ContainsFunc(pixels, func(px pixel.Pixel) bool { return px.Kind == pixel.KindLLM }) {
		s.writeSemossError(w, r, httpapi.ErrDraining())
		return
	}
	// Waiting for a model can outlast the server's WriteTimeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(SemossSyncWait + 30*time.Second))
	out := make([]PixelReturn, 0, len(pixels))
	// Each job id is stopped once per request, however often the
	// expression names it (pixel.MaxStopIDs caps the distinct ones).
	stopped := map[string]string{}
	for i, px := range pixels {
		start := time.Now()
		e := s.runOnePixel(r, insight, px, stopped)
		if r.Context().Err() != nil {
			return // the client went away; the job goes on
		}
		e.PixelID, e.PixelExpression = strconv.Itoa(i+1), px.Expr
		if e.TimeToRun == 0 {
			e.TimeToRun = time.Since(start).Milliseconds()
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, PixelResponse{InsightID: insight, PixelReturn: out})
}

// runOnePixel runs px. stopped holds the outcome of every job id the
// request stopped so far, by pixel.StopKey: a repeated id is answered from
// it, without another cancel.
func (s *Server) runOnePixel(r *http.Request, insight string, px pixel.Pixel, stopped map[string]string) PixelReturn {
	ctx := r.Context()
	p := principalFrom(ctx)
	switch px.Kind {
	case pixel.KindMeta:
		return PixelReturn{IsMeta: true, Output: true, OperationType: opOperation}
	case pixel.KindStop:
		msgs := make([]string, len(px.StopIDs))
		for i, id := range px.StopIDs {
			if msg, ok := stopped[pixel.StopKey(id)]; ok {
				msgs[i] = msg
				continue
			}
			msg, err := s.stopJob(ctx, p.Tenant, id)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error("stop pixel job", "job", id, "err", err)
				}
				return PixelReturn{Output: "internal error", OperationType: opError}
			}
			msgs[i], stopped[pixel.StopKey(id)] = msg, msg
		}
		if len(msgs) == 1 {
			return PixelReturn{Output: msgs[0], OperationType: opOperation}
		}
		return PixelReturn{Output: msgs, OperationType: opOperation}
	case pixel.KindLLM:
		job, err := s.submitPixel(r, p, insight, px, true)
		if err != nil {
			return s.submitErrorEntry(r, err)
		}
		if err := s.awaitJob(ctx, p.Tenant, job.ID, SemossSyncWait); err != nil && !errors.Is(err, errStillRunning) {
			if ctx.Err() == nil {
				s.log.Error("await pixel job", "job", job.ID, "err", err)
			}
			return PixelReturn{Output: "internal error", OperationType: opError}
		}
		res, err := s.store.PixelResult(ctx, p.Tenant, job.ID)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("pixel job result", "job", job.ID, "err", err)
			}
			return PixelReturn{Output: "internal error", OperationType: opError}
		}
		return llmEntry(res)
	}
	return PixelReturn{Output: fmt.Sprintf("pixel %s is not supported", px.Kind), OperationType: opError}
}

// submitErrorEntry turns a submit failure into an ERROR entry: the
// client's mistakes with their message, anything else logged (at Debug
// once the client is gone: httpapi.ClientGone).
func (s *Server) submitErrorEntry(r *http.Request, err error) PixelReturn {
	var ae *httpapi.APIError
	if errors.As(err, &ae) && ae.Status < 500 {
		return PixelReturn{Output: ae.Message, OperationType: opError}
	}
	if httpapi.ClientGone(r) {
		httpapi.LogClientGone(s.log, r, err)
	} else {
		s.log.Error("submit pixel job", "err", err)
	}
	return PixelReturn{Output: "internal error", OperationType: opError}
}

// stopJob cancels a job for StopPixelExecution and returns SEMOSS's
// message for the outcome. A running job's model call is aborted.
func (s *Server) stopJob(ctx context.Context, tenant, rawID string) (string, error) {
	id, err := httpapi.ParseJobID(strings.TrimSpace(rawID))
	if err != nil {
		return fmt.Sprintf("Pixel job %s not found", truncate(rawID, 64)), nil
	}
	a := store.ActorFrom(ctx)
	a.Via = "StopPixelExecution"
	outcome, err := s.store.RequestCancel(store.WithActor(ctx, a), tenant, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Sprintf("Pixel job %s not found", id), nil
	case err != nil:
		return "", err
	case outcome == store.CancelAlreadyFinished:
		return fmt.Sprintf("Pixel job %s already completed", id), nil
	}
	return fmt.Sprintf("Cancel requested for pixel job %s", id), nil
}

// submitPixel submits an LLM pixel as a job, through Submit (the same
// checks as the native API), with its pixel metadata. A pixel without
// roomId gets a new room, as in SEMOSS.
func (s *Server) submitPixel(r *http.Request, p httpapi.Principal, insight string, px pixel.Pixel, sync bool) (store.Job, error) {
	call := px.LLM
	room := call.RoomID
	if room == "" {
		room = uuid.NewString()
	}
	// The job and its pixel metadata are stored together, or not at all.
	return s.jobs.SubmitPixel(r, p, jobsapi.CreateJobRequest{
		Engine: call.Engine, Command: call.Command, System: call.Context,
		Params: call.Params, RoomID: room, UseHistory: call.UseHistory,
	}, &store.PixelJob{InsightID: insight, Expression: px.Expr, Sync: sync})
}

// errStillRunning: the job had not finished when the wait ended.
var errStillRunning = errors.New("job still running")

// awaitJob waits until a job has finished, for at most max, through the
// stream reader (woken by LISTEN/NOTIFY, holding no connection while it
// waits). It returns errStillRunning at the deadline, store.ErrNotFound
// for an unknown job, and ctx's error when the client goes away.
func (s *Server) awaitJob(ctx context.Context, tenant string, id uuid.UUID, max time.Duration) error {
	deadline := time.Now().Add(max)
	from := 0
	for {
		wait := min(time.Until(deadline), s.cfg.MaxWait)
		if wait <= 0 {
			return errStillRunning
		}
		snap, err := s.read(ctx, stream.Params{Tenant: tenant, JobID: id, From: from, Limit: s.cfg.PageSize, Wait: wait})
		if err != nil {
			return err
		}
		if s.drain.Draining() && !(snap.Terminal() && !snap.More) {
			// Shutting down: answer now, as at the deadline.
			return errStillRunning
		}
		if n := len(snap.Chunks); n > 0 {
			from = snap.Chunks[n-1].Seq + 1
		}
		if snap.Terminal() && !snap.More {
			return nil
		}
	}
}

// llmEntry is the pixelReturn entry of an LLM job.
func llmEntry(res store.PixelResult) PixelReturn {
	e := PixelReturn{TimeToRun: res.RunMillis, OperationType: opOperation}
	switch res.Status {
	case store.StatusCompleted:
		e.Output = llmOutput(res)
	case store.StatusFailed:
		var body struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(res.Error, &body)
		e.Output, e.OperationType = "the model call failed: "+cmp.Or(body.Message, "unknown error"), opError
	case store.StatusCancelled:
		e.Output, e.OperationType = fmt.Sprintf("Pixel job %s was canceled", res.JobID), opError
	default:
		e.Output, e.OperationType = fmt.Sprintf("Pixel job %s has not finished after %s; it goes on: read it with pixelJobStreaming, or /engine/result later", res.JobID, SemossSyncWait), opError
	}
	return e
}

func llmOutput(res store.PixelResult) LLMOutput {
	var usage struct {
		In  int64 `json:"input_tokens"`
		Out int64 `json:"output_tokens"`
	}
	_ = json.Unmarshal(res.Usage, &usage)
	out := LLMOutput{
		Response: res.Content, NumberOfTokensInPrompt: usage.In, NumberOfTokensInResponse: usage.Out,
		MessageID: res.JobID.String(), RoomID: res.RoomID, MessageType: "CHAT",
	}
	var calls []struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	if json.Unmarshal(res.ToolCalls, &calls) == nil && len(calls) > 0 {
		tc := make([]ToolCallOutput, len(calls))
		for i, c := range calls {
			tc[i] = ToolCallOutput{ID: c.ID, Type: cmp.Or(c.Type, "function"), Name: c.Function.Name, Arguments: c.Function.Arguments}
		}
		out.Response, out.MessageType = tc, "TOOL"
	}
	return out
}

// RunPixelAsync serves POST /engine/runPixelAsync: it submits the
// expression's LLM pixel as a job and answers {"jobId":..} at once.
// Anything but exactly one LLM pixel is a 400 with SEMOSS's error body
// (META and StopPixelExecution are answered by runPixel).
func (s *Server) RunPixelAsync(w http.ResponseWriter, r *http.Request) {
	f, err := s.semossForm(w, r)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	insight, err := insightOf(f.Get("insightId"))
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	pixels, err := pixel.Parse(f.Get("expression"))
	if err != nil {
		typ := "InvalidPixel"
		var se *pixel.SyntaxError
		if errors.As(err, &se) {
			typ = "INVALID_SYNTAX"
		}
		s.writeSemossError(w, r, semossErrorf(http.StatusBadRequest, typ, "%s", pixelErrorMessage(err)))
		return
	}
	if len(pixels) != 1 || pixels[0].Kind != pixel.KindLLM {
		s.writeSemossError(w, r, semossErrorf(http.StatusBadRequest, "InvalidPixel",
			"runPixelAsync runs exactly one LLM(...) pixel; run META | true and StopPixelExecution(...) with runPixel"))
		return
	}
	job, err := s.submitPixel(r, principalFrom(r.Context()), insight, pixels[0], false)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"jobId": job.ID.String()})
}

// Result serves POST /engine/result: the job's final pixelReturn,
// once it has finished (it waits, like runPixel). Unlike SEMOSS it can be
// read any number of times: nothing is deleted.
func (s *Server) Result(w http.ResponseWriter, r *http.Request) {
	f, err := s.semossForm(w, r)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	ctx := r.Context()
	tenant := principalFrom(ctx).Tenant
	id, ok := formJobID(f)
	unknown := semossErrorf(http.StatusNotFound, SemossUnknownJob, "unknown job %q", truncate(f.Get("jobId"), 64))
	if !ok {
		s.writeSemossError(w, r, unknown)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(SemossSyncWait + 30*time.Second))
	err = s.awaitJob(ctx, tenant, id, SemossSyncWait)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.writeSemossError(w, r, unknown)
		return
	case ctx.Err() != nil:
		return
	case err != nil && !errors.Is(err, errStillRunning):
		s.writeSemossError(w, r, err)
		return
	}
	res, err := s.store.PixelResult(ctx, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		s.writeSemossError(w, r, unknown)
		return
	}
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	e := llmEntry(res)
	e.PixelID = "1"
	resp := PixelResponse{InsightID: "", PixelReturn: []PixelReturn{e}}
	if res.Pixel != nil {
		resp.InsightID, e.PixelExpression = res.Pixel.InsightID, res.Pixel.Expression
		resp.PixelReturn[0] = e
	}
	writeJSON(w, http.StatusOK, resp)
}
