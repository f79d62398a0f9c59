// Package respevent derives the OpenAI Responses API's streaming events, and
// the Response object, from a job's stored chunks (the chunk format of
// internal/engine/README.md: content, thinking, tool deltas, usage,
// finish_reason).
//
// The derivation is a pure function of the chunks: nothing else is stored
// per event, and an event's sequence_number is its position in the derived
// list. Every reader, on any node and at any time, therefore derives the
// same bytes for the same sequence number, and resuming after number N is
// "derive from chunk 0, send what comes after N": chunks are read in one
// or a few statements whatever the number of events (issue 13).
//
// For that to hold, each chunk's events depend only on that chunk and the
// chunks before it, never on when a reader looked. The one event that a
// job's status may trigger before any chunk exists, response.in_progress,
// carries nothing that changes, so it is the same event at the same
// number whether a live reader saw the job start or a late reader derives
// it from the first chunk.
//
// The lifecycle (numbers are positions, from 0):
//
//	response.created            always first
//	response.queued             background responses only
//	response.in_progress        when the job runs, or at its first chunk
//	output items...             one per run of text, of thinking, or per tool call
//	response.completed | response.incomplete | response.failed | response.cancelled
//
// A run of content chunks is one message item (output_item.added,
// content_part.added, output_text.delta..., output_text.done,
// content_part.done, output_item.done); a run of thinking chunks is one
// reasoning item with one summary part; each tool call index is one
// function_call item, added once its name is known.
package respevent

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jobstream/jobstream/internal/store"
)

// Meta is what a Response keeps from its request: everything the Response
// object echoes that the chunks do not say. It is stored as JSON with the
// response.
type Meta struct {
	Model             string            `json:"model"`
	Background        bool              `json:"background"`
	Instructions      *string           `json:"instructions,omitempty"`
	MaxOutputTokens   *int64            `json:"max_output_tokens,omitempty"`
	Temperature       *float64          `json:"temperature,omitempty"`
	TopP              *float64          `json:"top_p,omitempty"`
	ParallelToolCalls *bool             `json:"parallel_tool_calls,omitempty"`
	ToolChoice        json.RawMessage   `json:"tool_choice,omitempty"`
	Tools             json.RawMessage   `json:"tools,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
}

// Event is one derived event. Its JSON is built on demand, so events a
// resumer skips cost no encoding.
type Event struct {
	// Seq is the event's sequence_number.
	Seq int
	// Type is the event's type, also the SSE event name.
	Type string
	body any
}

// JSON returns the event's JSON encoding (without a trailing newline).
func (e Event) JSON() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e.body); err != nil {
		// Every body is built from strings, numbers and raw JSON that
		// was validated before it was stored.
		panic("respevent: encode " + e.Type + ": " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Deriver turns one response's chunks, fed in seq order, into events.
// It is not safe for concurrent use.
type Deriver struct {
	id        string
	createdAt int64
	meta      Meta
	base      string // the id without "resp_", for item ids

	next    int // the next sequence number
	opened  bool
	started bool
	done    bool

	items []*item       // output items, in output_index order
	cur   *item         // the open message or reasoning item
	calls map[int]*item // tool calls not yet done, by chunk index

	status      string // set when done
	incomplete  *IncompleteDetails
	err         *Error
	usage       *Usage
	completedAt *int64
}

type item struct {
	kind   string
	index  int // output_index, once added
	id     string
	status string
	text   strings.Builder // message text, summary text or arguments
	// function calls
	callID, name string
	added        bool
	pending      strings.Builder // arguments seen before the name
}

// New returns a Deriver for the response id created at createdAt (Unix
// seconds).
func New(id string, createdAt int64, meta Meta) *Deriver {
	return &Deriver{
		id: id, createdAt: createdAt, meta: meta,
		base:  strings.TrimPrefix(id, "resp_"),
		calls: map[int]*item{},
	}
}

// Next is the sequence number of the next event.
func (d *Deriver) Next() int { return d.next }

// Done reports whether the terminal event has been derived.
func (d *Deriver) Done() bool { return d.done }

func (d *Deriver) emit(evs []Event, typ string, body any) []Event {
	e := Event{Seq: d.next, Type: typ, body: body}
	d.next++
	return append(evs, e)
}

// Open returns response.created (and response.queued for a background
// response) the first time it is called.
func (d *Deriver) Open() []Event {
	if d.opened {
		return nil
	}
	d.opened = true
	var evs []Event
	first := StatusInProgress
	if d.meta.Background {
		first = StatusQueued
	}
	r := d.snapshot(first)
	evs = d.emit(evs, "response.created", responseEvent{"response.created", d.next, &r})
	if d.meta.Background {
		r := d.snapshot(StatusQueued)
		evs = d.emit(evs, "response.queued", responseEvent{"response.queued", d.next, &r})
	}
	return evs
}

// Start returns response.in_progress (after Open's events, if not yet
// sent) the first time it is called: when the job is seen running, or
// before the first chunk's events.
func (d *Deriver) Start() []Event {
	evs := d.Open()
	if d.started {
		return evs
	}
	d.started = true
	r := d.snapshot(StatusInProgress)
	return d.emit(evs, "response.in_progress", responseEvent{"response.in_progress", d.next, &r})
}

// chunkData is the union of the fields of every chunk shape.
type chunkData struct {
	Content      *string `json:"content"`
	Thinking     *string `json:"thinking"`
	FinishReason *string `json:"finish_reason"`
	Index        *int    `json:"index"`
	ID           *string `json:"id"`
	Function     *struct {
		Name      *string `json:"name"`
		Arguments *string `json:"arguments"`
	} `json:"function"`
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
	// usage
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	ReasoningTokens          *int64 `json:"reasoning_tokens"`
}

// Feed returns the events chunk c gives. Chunks must come in seq order,
// each once; chunks after the finish chunk give nothing.
func (d *Deriver) Feed(c store.Chunk) []Event {
	if d.done {
		return nil
	}
	evs := d.Start()
	var data chunkData
	if err := json.Unmarshal(c.Data, &data); err != nil {
		return evs // not an object: nothing to derive (never stored by jobstream)
	}
	if data.FinishReason != nil {
		var msg, typ string
		if data.Error != nil {
			msg, typ = data.Error.Message, data.Error.Type
		}
		at := c.CreatedAt.Unix()
		return d.finish(evs, *data.FinishReason, msg, typ, &at)
	}
	switch c.StreamType {
	case "content":
		if data.Content != nil && *data.Content != "" {
			evs = d.text(evs, ItemMessage, *data.Content)
		}
	case "thinking":
		if data.Thinking != nil && *data.Thinking != "" {
			evs = d.text(evs, ItemReasoning, *data.Thinking)
		}
	case "tool":
		if data.Index != nil {
			evs = d.tool(evs, *data.Index, data)
		}
	case "usage":
		u := Usage{}
		u.InputTokens = deref(data.InputTokens)
		u.OutputTokens = deref(data.OutputTokens)
		u.InputTokensDetails.CachedTokens = deref(data.CacheReadInputTokens)
		u.InputTokensDetails.CacheWriteTokens = deref(data.CacheCreationInputTokens)
		u.OutputTokensDetails.ReasoningTokens = deref(data.ReasoningTokens)
		u.TotalTokens = u.InputTokens + u.OutputTokens
		d.usage = &u
	}
	return evs
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// text appends a content or thinking delta to the open item of that kind,
// opening one (and closing what was open) if needed.
func (d *Deriver) text(evs []Event, kind, delta string) []Event {
	if d.cur == nil || d.cur.kind != kind {
		evs = d.closeAll(evs, ItemCompleted)
		it := &item{kind: kind, index: len(d.items), status: ItemInProgress}
		if kind == ItemMessage {
			it.id = "msg_" + d.base + "_" + strconv.Itoa(it.index)
		} else {
			it.id = "rs_" + d.base + "_" + strconv.Itoa(it.index)
		}
		d.items = append(d.items, it)
		d.cur = it
		evs = d.emit(evs, "response.output_item.added", itemEvent{"response.output_item.added", d.next, it.index, it.wire()})
		if kind == ItemMessage {
			evs = d.emit(evs, "response.content_part.added", contentPartEvent{"response.content_part.added", d.next, it.id, it.index, 0, Part{"output_text", ""}})
		} else {
			evs = d.emit(evs, "response.reasoning_summary_part.added", summaryPartEvent{"response.reasoning_summary_part.added", d.next, it.id, it.index, 0, Part{"summary_text", ""}})
		}
	}
	it := d.cur
	it.text.WriteString(delta)
	if kind == ItemMessage {
		return d.emit(evs, "response.output_text.delta", textDeltaEvent{"response.output_text.delta", d.next, it.id, it.index, 0, delta, []struct{}{}})
	}
	return d.emit(evs, "response.reasoning_summary_text.delta", summaryDeltaEvent{"response.reasoning_summary_text.delta", d.next, it.id, it.index, 0, delta})
}

// tool applies one tool delta chunk. A call's output_item.added waits for
// its name (output_item.added carries call_id and name); arguments seen
// before it go out as one delta right after it.
func (d *Deriver) tool(evs []Event, index int, data chunkData) []Event {
	if d.cur != nil {
		evs = d.closeCur(evs, ItemCompleted)
	}
	it := d.calls[index]
	if it == nil {
		it = &item{kind: ItemFunctionCall, status: ItemInProgress}
		d.calls[index] = it
	}
	if data.ID != nil && it.callID == "" {
		it.callID = *data.ID
	}
	if data.Function == nil {
		return evs
	}
	if data.Function.Name != nil && it.name == "" {
		it.name = *data.Function.Name
	}
	if data.Function.Arguments != nil {
		if it.added {
			return d.arguments(evs, it, *data.Function.Arguments)
		}
		it.pending.WriteString(*data.Function.Arguments)
	}
	if !it.added && it.name != "" {
		evs = d.addCall(evs, it)
	}
	return evs
}

func (d *Deriver) addCall(evs []Event, it *item) []Event {
	it.added = true
	it.index = len(d.items)
	it.id = "fc_" + d.base + "_" + strconv.Itoa(it.index)
	if it.callID == "" {
		it.callID = "call_" + d.base + "_" + strconv.Itoa(it.index)
	}
	d.items = append(d.items, it)
	evs = d.emit(evs, "response.output_item.added", itemEvent{"response.output_item.added", d.next, it.index, it.wire()})
	if it.pending.Len() > 0 {
		p := it.pending.String()
		it.pending.Reset()
		evs = d.arguments(evs, it, p)
	}
	return evs
}

func (d *Deriver) arguments(evs []Event, it *item, delta string) []Event {
	if delta == "" {
		return evs
	}
	it.text.WriteString(delta)
	return d.emit(evs, "response.function_call_arguments.delta", argumentsDeltaEvent{"response.function_call_arguments.delta", d.next, it.id, it.index, delta})
}

// closeCur ends the open message or reasoning item with status.
func (d *Deriver) closeCur(evs []Event, status string) []Event {
	it := d.cur
	if it == nil {
		return evs
	}
	d.cur = nil
	it.status = status
	text := it.text.String()
	if it.kind == ItemMessage {
		evs = d.emit(evs, "response.output_text.done", textDoneEvent{"response.output_text.done", d.next, it.id, it.index, 0, text, []struct{}{}})
		evs = d.emit(evs, "response.content_part.done", contentPartEvent{"response.content_part.done", d.next, it.id, it.index, 0, Part{"output_text", text}})
	} else {
		evs = d.emit(evs, "response.reasoning_summary_text.done", summaryDoneEvent{"response.reasoning_summary_text.done", d.next, it.id, it.index, 0, text})
		evs = d.emit(evs, "response.reasoning_summary_part.done", summaryPartEvent{"response.reasoning_summary_part.done", d.next, it.id, it.index, 0, Part{"summary_text", text}})
	}
	return d.emit(evs, "response.output_item.done", itemEvent{"response.output_item.done", d.next, it.index, it.wire()})
}

// closeAll ends every open item: the message or reasoning item, then the
// tool calls in the order they were opened (calls never named are added
// first, so that every call the model made is an output item).
func (d *Deriver) closeAll(evs []Event, status string) []Event {
	evs = d.closeCur(evs, status)
	if len(d.calls) == 0 {
		return evs
	}
	for _, i := range slices.Sorted(maps.Keys(d.calls)) {
		if it := d.calls[i]; !it.added {
			evs = d.addCall(evs, it)
		}
	}
	open := make([]*item, 0, len(d.calls))
	for _, it := range d.calls {
		open = append(open, it)
	}
	slices.SortFunc(open, func(a, b *item) int { return cmp.Compare(a.index, b.index) })
	for _, it := range open {
		it.status = status
		args := it.text.String()
		evs = d.emit(evs, "response.function_call_arguments.done", argumentsDoneEvent{"response.function_call_arguments.done", d.next, it.id, it.index, it.name, args})
		evs = d.emit(evs, "response.output_item.done", itemEvent{"response.output_item.done", d.next, it.index, it.wire()})
	}
	clear(d.calls)
	return evs
}

// finish derives the terminal events from a finish chunk's reason (the
// provider's own, passed through, or jobstream's cancelled and error).
func (d *Deriver) finish(evs []Event, reason, errMsg, errType string, at *int64) []Event {
	status, itemStatus := StatusCompleted, ItemCompleted
	switch reason {
	case "cancelled":
		status = StatusCancelled
	case "error":
		status = StatusFailed
		d.err = &Error{Code: errorCode(errType), Message: errMsg}
		if d.err.Message == "" {
			d.err.Message = "the model failed"
		}
	case "length", "max_tokens", "model_context_window_exceeded":
		status = StatusIncomplete
		d.incomplete = &IncompleteDetails{Reason: "max_output_tokens"}
	case "content_filter", "refusal":
		status = StatusIncomplete
		d.incomplete = &IncompleteDetails{Reason: "content_filter"}
	}
	if status != StatusCompleted {
		itemStatus = ItemIncomplete
	}
	evs = d.closeAll(evs, itemStatus)
	d.done, d.status, d.completedAt = true, status, at
	r := d.snapshot(status)
	typ := "response." + status
	return d.emit(evs, typ, responseEvent{typ, d.next, &r})
}

// End returns the terminal events of a job that finished (status, with
// its normalised finish reason) without a finish chunk having been fed.
// Every jobstream job writes one, so this is a safety net: it derives the
// same events from the job record for every reader.
func (d *Deriver) End(status, finishReason string) []Event {
	if d.done {
		return nil
	}
	evs := d.Start()
	reason := finishReason
	switch status {
	case store.StatusCancelled:
		reason = "cancelled"
	case store.StatusFailed:
		reason = "error"
	}
	return d.finish(evs, reason, "", "", nil)
}

// errorCode maps an engine error type onto a Response error code.
func errorCode(typ string) string {
	switch typ {
	case "rate_limit", "rate_limit_exceeded", "rate_limit_error":
		return "rate_limit_exceeded"
	case "invalid_request", "invalid_request_error":
		return "invalid_prompt"
	}
	return "server_error"
}

// Response returns the Response object as derived so far. Until the
// terminal event, its status is status (queued or in_progress, from the
// job record) and its items show what has streamed.
func (d *Deriver) Response(status string) Response {
	if d.done {
		status = d.status
	}
	return d.snapshot(status)
}

// snapshot builds the Response object with the given status.
func (d *Deriver) snapshot(status string) Response {
	r := Response{
		ID: d.id, Object: "response", CreatedAt: d.createdAt, Status: status,
		Background: d.meta.Background, Instructions: d.meta.Instructions,
		MaxOutputTokens: d.meta.MaxOutputTokens, Model: d.meta.Model,
		Output: make([]Item, 0, len(d.items)), ParallelToolCalls: true,
		Store: true, Temperature: d.meta.Temperature, Text: plainText(),
		ToolChoice: d.meta.ToolChoice, Tools: d.meta.Tools, TopP: d.meta.TopP,
		Truncation: "disabled", Metadata: d.meta.Metadata,
	}
	if d.meta.ParallelToolCalls != nil {
		r.ParallelToolCalls = *d.meta.ParallelToolCalls
	}
	if r.ToolChoice == nil {
		r.ToolChoice = json.RawMessage(`"auto"`)
	}
	if r.Tools == nil {
		r.Tools = json.RawMessage(`[]`)
	}
	if r.Metadata == nil {
		r.Metadata = map[string]string{}
	}
	if d.done {
		r.Error, r.IncompleteDetails, r.CompletedAt = d.err, d.incomplete, d.completedAt
		r.Usage = d.usage
	}
	var text strings.Builder
	for _, it := range d.items {
		w := it.wire()
		r.Output = append(r.Output, w)
		for _, p := range w.Content {
			text.WriteString(p.Text)
		}
	}
	r.OutputText = text.String()
	return r
}

// wire returns the item's current state as a value the caller owns.
func (it *item) wire() Item {
	w := Item{Type: it.kind, ID: it.id, Status: it.status}
	switch it.kind {
	case ItemMessage:
		if it.status == ItemInProgress && it.text.Len() == 0 {
			w.Content = []Part{}
		} else {
			w.Content = []Part{{"output_text", it.text.String()}}
		}
	case ItemReasoning:
		if it.status == ItemInProgress && it.text.Len() == 0 {
			w.Summary = []Part{}
		} else {
			w.Summary = []Part{{"summary_text", it.text.String()}}
		}
	case ItemFunctionCall:
		w.CallID, w.Name, w.Arguments = it.callID, it.name, it.text.String()
	}
	return w
}

// AppendSSE appends the event as a Server-Sent Event whose name is its
// type and whose id is its sequence number (so that a generic EventSource
// can resume with Last-Event-ID too).
func (e Event) AppendSSE(b []byte) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, int64(e.Seq), 10)
	b = append(b, "\nevent: "...)
	b = append(b, e.Type...)
	b = append(b, "\ndata: "...)
	b = append(b, e.JSON()...)
	return append(b, "\n\n"...)
}
