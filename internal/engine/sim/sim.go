// Package sim is jobstream's built-in simulated model (engine id "sim").
//
// It is a simulator, not a language model: it streams deterministic text
// derived from the prompt, in token-sized pieces, at a configurable pace, so
// that the out-of-the-box run, the tests and the benchmarks exercise the
// whole streaming path without a provider. When the request carries tools it
// streams one tool call in exactly the shape real providers produce
// (the chunk format in internal/engine/README.md), and when the conversation ends with a tool result it
// answers in text, so tool round trips can be exercised too.
//
// Params (all optional):
//
//	sim_tokens_per_second  pace; default 30, at most 10000, 0 = as fast as possible
//	sim_tokens             response length in tokens; default 150, at most 100000
//	max_completion_tokens  cap; when it cuts the text the finish reason is "length"
//	sim_fail_after         fail the turn with an error after this many tokens
//	sim_emit_timestamps    add "emitted_at_us" (Unix µs) to content chunks (benchmarks)
//	sim_first_token_delay  seconds to wait before the first token (0 to 3600;
//	                       default 0): a model slow to answer, for tests of
//	                       what happens to a job that has written nothing yet
//
// A server refuses at submit params with which a turn would take longer
// than its maximum job runtime (MinRuntime, engine.MinRuntimer): the sim
// costs nothing, so without that bound one request could hold a worker's
// slot for hours.
package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jobstream/jobstream/internal/engine"
)

// Defaults and bounds of the simulator's params. The bounds keep one
// request from writing more than a job may (the worker stops any job at
// worker.DefaultMaxChunks chunks anyway).
const (
	DefaultTokensPerSecond = 30
	DefaultTokens          = 150
	MaxTokensPerSecond     = 10_000
	MaxTokens              = 100_000
)

// ID is the engine id the simulator is registered under.
const ID = "sim"

// Engine is the simulator. The zero value is ready to use.
type Engine struct {
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// New returns a simulator.
func New() *Engine { return &Engine{} }

// Info describes the simulator for engine listings.
func Info() engine.Info { return engine.Info{ID: ID, Provider: "sim", Model: "simulator"} }

type settings struct {
	rate       float64
	tokens     int64
	maxTokens  int64
	hasMax     bool
	failAfter  int64
	hasFail    bool
	timestamps bool
	firstDelay time.Duration
}

func parse(p map[string]json.RawMessage) (settings, error) {
	s := settings{rate: DefaultTokensPerSecond, tokens: DefaultTokens}
	if v, ok, err := engine.ParamFloat(p, "sim_tokens_per_second"); err != nil {
		return s, err
	} else if ok {
		if v < 0 || v > MaxTokensPerSecond {
			return s, fmt.Errorf("param sim_tokens_per_second: must be between 0 (as fast as possible) and %d, got %v", MaxTokensPerSecond, v)
		}
		s.rate = v
	}
	if v, ok, err := engine.ParamInt(p, "sim_tokens"); err != nil {
		return s, err
	} else if ok {
		if v < 0 || v > MaxTokens {
			return s, fmt.Errorf("param sim_tokens: must be between 0 and %d, got %d", MaxTokens, v)
		}
		s.tokens = v
	}
	v, ok, err := engine.MaxTokens(p)
	if err != nil {
		return s, err
	}
	if ok {
		if v < 1 {
			return s, fmt.Errorf("param max_completion_tokens: must be >= 1, got %d", v)
		}
		s.maxTokens, s.hasMax = v, true
	}
	if v, ok, err := engine.ParamInt(p, "sim_fail_after"); err != nil {
		return s, err
	} else if ok {
		s.failAfter, s.hasFail = v, true
	}
	if v, ok, err := engine.ParamFloat(p, "sim_first_token_delay"); err != nil {
		return s, err
	} else if ok {
		if v < 0 || v > 3600 {
			return s, fmt.Errorf("param sim_first_token_delay: must be between 0 and 3600 seconds, got %v", v)
		}
		s.firstDelay = time.Duration(v * float64(time.Second))
	}
	if raw, ok := p["sim_emit_timestamps"]; ok {
		s.timestamps = string(raw) == "true"
	}
	return s, nil
}

// MinRuntime is the least time a turn with params p takes: the first
// token's delay plus the pace of its tokens (engine.MinRuntimer), so that
// a server refuses at submit a simulated turn that would outlast its
// maximum runtime. With tools the turn may be a short tool call, so only
// the delay and its first few chunks count.
func (e *Engine) MinRuntime(p map[string]json.RawMessage) time.Duration {
	s, err := parse(p)
	if err != nil {
		return 0
	}
	n := s.tokens
	if s.hasMax {
		n = min(n, s.maxTokens)
	}
	if s.hasFail {
		n = min(n, max(s.failAfter, 0))
	}
	if tools, _ := engine.Tools(p); len(tools) > 0 {
		n = min(n, 4)
	}
	d := s.firstDelay
	if s.rate > 0 && n > 1 {
		// Token i is released at i/rate after the first.
		d += time.Duration(float64(n-1) / s.rate * float64(time.Second))
	}
	return d
}

// Validate checks the simulator's params, so bad ones are rejected at submit
// time rather than failing the job later (engine.Validator).
func (e *Engine) Validate(p map[string]json.RawMessage) error {
	_, err := parse(p)
	if err == nil {
		_, err = engine.Tools(p)
	}
	return err
}

// Stream implements engine.Engine.
func (e *Engine) Stream(ctx context.Context, req engine.Request, emit engine.Emit) (engine.Finish, error) {
	s, err := parse(req.Params)
	if err != nil {
		return engine.Finish{}, &engine.Error{Type: "invalid_request", Message: err.Error()}
	}
	tools, err := engine.Tools(req.Params)
	if err != nil {
		return engine.Finish{}, &engine.Error{Type: "invalid_request", Message: err.Error()}
	}
	now := e.Now
	if now == nil {
		now = time.Now
	}
	if s.firstDelay > 0 {
		t := time.NewTimer(s.firstDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return engine.Finish{}, ctx.Err()
		case <-t.C:
		}
	}
	p := pacer{rate: s.rate, start: now(), now: now}

	prompt, last := lastTurn(req.Messages)
	seed := seedOf(req.Messages)
	if len(tools) > 0 && last != "tool" {
		return e.streamToolCall(ctx, &p, seed, tools[0], prompt, emit)
	}

	var text []string
	if last == "tool" {
		text = toolAnswer(prompt, seed, s.tokens)
	} else {
		text = generate(prompt, seed, s.tokens)
	}
	n := int64(len(text))
	finish := engine.FinishStop
	if s.hasMax && s.maxTokens < n {
		n, finish = s.maxTokens, engine.FinishLength
	}
	for i := int64(0); i < n; i++ {
		if s.hasFail && i == s.failAfter {
			return engine.Finish{}, &engine.Error{Type: "sim_error", Message: fmt.Sprintf("simulated failure after %d tokens", i)}
		}
		if err := p.wait(ctx, i); err != nil {
			return engine.Finish{}, err
		}
		var c engine.Chunk
		if s.timestamps {
			c = engine.ContentAt(text[i], now())
		} else {
			c = engine.Content(text[i])
		}
		if err := emit(c); err != nil {
			return engine.Finish{}, err
		}
	}
	if err := emit(engine.UsageChunk(usage(req.Messages, n))); err != nil {
		return engine.Finish{}, err
	}
	return engine.Finish{Reason: finish, Stream: engine.StreamContent}, nil
}

func (e *Engine) streamToolCall(ctx context.Context, p *pacer, seed uint64, tool engine.Tool, prompt string, emit engine.Emit) (engine.Finish, error) {
	args := sampleArguments(tool.Function.Parameters, prompt)
	chunks := []engine.Chunk{
		engine.ToolID(0, fmt.Sprintf("call_%016x", seed)),
		engine.ToolType(0, "function"),
		engine.ToolName(0, tool.Function.Name),
	}
	for _, frag := range splitFragments(args, 8) {
		chunks = append(chunks, engine.ToolArguments(0, frag))
	}
	for i, c := range chunks {
		if err := p.wait(ctx, int64(i)); err != nil {
			return engine.Finish{}, err
		}
		if err := emit(c); err != nil {
			return engine.Finish{}, err
		}
	}
	if err := emit(engine.UsageChunk(usage(nil, int64(len(chunks))))); err != nil {
		return engine.Finish{}, err
	}
	return engine.Finish{Reason: engine.FinishToolCalls, Stream: engine.StreamTool}, nil
}

// pacer releases token i at start + i/rate, so the pace does not drift with
// the time spent emitting.
type pacer struct {
	rate  float64
	start time.Time
	now   func() time.Time
	// timer is reused from one token to the next (one allocation per
	// stream, not per token).
	timer *time.Timer
}

func (p *pacer) wait(ctx context.Context, i int64) error {
	if p.rate == 0 {
		return ctx.Err()
	}
	at := p.start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
	d := at.Sub(p.now())
	if d <= 0 {
		return ctx.Err()
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d) // stopped or fired and drained (Go 1.23 timers)
	}
	select {
	case <-ctx.Done():
		p.timer.Stop()
		return ctx.Err()
	case <-p.timer.C:
		return nil
	}
}

func lastTurn(msgs []engine.Message) (content, role string) {
	if len(msgs) == 0 {
		return "", ""
	}
	m := msgs[len(msgs)-1]
	return m.Content, m.Role
}

func seedOf(msgs []engine.Message) uint64 {
	h := fnv.New64a()
	for _, m := range msgs {
		h.Write([]byte(m.Role))
		h.Write([]byte{0})
		h.Write([]byte(m.Content))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func usage(msgs []engine.Message, out int64) engine.Usage {
	var in int64
	for _, m := range msgs {
		in += int64(len(strings.Fields(m.Content))) + 4
	}
	return engine.Usage{InputTokens: &in, OutputTokens: &out}
}

var vocabulary = strings.Fields(`the a of and to in is that it for on with as was at by this
from be are or an which one all their has more can when about game time way
people world first new made most like over only other into many play team
field ball goal match season player players coach fans speed skill pass
simple history story open long great small every between through against
during while each under again still often never always together moment`)

// generate returns n token-sized pieces of deterministic text that opens by
// restating the prompt's own words.
func generate(prompt string, seed uint64, n int64) []string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := strings.Fields(prompt)
	if len(words) > 12 {
		words = words[:12]
	}
	out := make([]string, 0, n)
	add := func(w string) {
		if int64(len(out)) >= n {
			return
		}
		if len(out) > 0 {
			w = " " + w
		}
		out = append(out, w)
	}
	if len(words) > 0 {
		add("You")
		add("asked:")
		for _, w := range words {
			add(w)
		}
		add("—")
		add("here")
		add("is")
		add("a")
		add("simulated")
		add("answer.")
	}
	sentence := 0
	for int64(len(out)) < n {
		w := vocabulary[r.IntN(len(vocabulary))]
		if sentence == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		sentence++
		if sentence > 6 && r.IntN(5) == 0 {
			w += "."
			sentence = 0
		}
		add(w)
	}
	return out
}

func toolAnswer(result string, seed uint64, n int64) []string {
	return generate("Based on the tool result "+result, seed, n)
}

// sampleArguments builds a JSON object with one plausible value per declared
// property of a JSON Schema object, in the schema's declaration order.
func sampleArguments(schema json.RawMessage, prompt string) string {
	var s struct {
		Properties json.RawMessage `json:"properties"`
	}
	_ = json.Unmarshal(schema, &s)
	keys, types := orderedProperties(s.Properties)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		switch types[i] {
		case "integer", "number":
			b.WriteString("42")
		case "boolean":
			b.WriteString("true")
		case "array":
			b.WriteString("[]")
		case "object":
			b.WriteString("{}")
		default:
			v := strings.Join(strings.Fields(prompt), " ")
			if len(v) > 40 {
				v = v[:40]
			}
			vb, _ := json.Marshal(strings.ToValidUTF8(v, ""))
			b.Write(vb)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// orderedProperties returns a JSON object's keys in document order with the
// "type" of each value.
func orderedProperties(raw json.RawMessage) (keys, types []string) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys, types
		}
		k, _ := t.(string)
		var v struct {
			Type string `json:"type"`
		}
		if err := dec.Decode(&v); err != nil {
			return keys, types
		}
		keys, types = append(keys, k), append(types, v.Type)
	}
	return keys, types
}

// splitFragments splits s into pieces of about n bytes without cutting a
// UTF-8 character.
func splitFragments(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		i := min(n, len(s))
		for i < len(s) && !utf8Start(s[i]) {
			i++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
