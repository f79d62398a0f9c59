// Package enginetest provides fake OpenAI and Anthropic servers for tests,
// and transcripts in each vendor's documented SSE wire format, so that
// provider code is exercised over real HTTP.
//
// A fake server answers each request with the next Response it was given, in
// order, and records every request for assertions:
//
//	srv := enginetest.NewOpenAIServer(t,
//		enginetest.ErrorResponse(429, `{"error":{"message":"slow down"}}`, "Retry-After", "0"),
//		enginetest.SSE(enginetest.OpenAIData(`{...}`), enginetest.OpenAIDone()),
//	)
//	// point an engine at srv.URL, stream, then inspect srv.Requests()
//
// The fixtures in fixtures.go pair transcripts with the exact chunks an
// engine must emit for them; they are shared by the provider tests and by
// end-to-end tests that check the rows stored.
package enginetest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Step is one thing a fake server does while answering: write bytes (and
// flush them to the network), drop the connection, or wait.
type Step struct {
	write      []byte
	disconnect bool
	hold       bool
	wait       <-chan struct{}
}

// Raw writes s as it is.
func Raw(s string) Step { return Step{write: []byte(s)} }

// OpenAIData writes one OpenAI SSE event: "data: <json>\n\n".
func OpenAIData(json string) Step { return Raw("data: " + json + "\n\n") }

// OpenAIDone writes OpenAI's end of stream: "data: [DONE]\n\n".
func OpenAIDone() Step { return Raw("data: [DONE]\n\n") }

// AnthropicEvent writes one Anthropic SSE event:
// "event: <type>\ndata: <json>\n\n".
func AnthropicEvent(typ, json string) Step {
	return Raw("event: " + typ + "\ndata: " + json + "\n\n")
}

// Disconnect drops the connection without ending the response, as a server
// or proxy that dies mid-stream does.
func Disconnect() Step { return Step{disconnect: true} }

// Hold keeps the stream open, sending nothing, until the client goes away.
// Server.Held is closed when a Hold starts, Server.ClientGone when the client
// has gone.
func Hold() Step { return Step{hold: true} }

// Wait pauses the response until ch is closed (or the client goes away).
func Wait(ch <-chan struct{}) Step { return Step{wait: ch} }

// SplitAt splits a write step into several, at the given byte offsets, each
// flushed separately.
func SplitAt(s Step, offsets ...int) []Step {
	var out []Step
	prev := 0
	for _, off := range offsets {
		out = append(out, Step{write: s.write[prev:off]})
		prev = off
	}
	return append(out, Step{write: s.write[prev:]})
}

// SplitInside splits a write step one byte into the first occurrence of
// char, a multi-byte UTF-8 character, so that its bytes travel in two
// network writes. It panics if char does not occur.
func SplitInside(s Step, char string) []Step {
	i := strings.Index(string(s.write), char)
	if i < 0 || len(char) < 2 {
		panic(fmt.Sprintf("enginetest: %q is not a multi-byte character of the step", char))
	}
	return SplitAt(s, i+1)
}

// Response is one HTTP response of a fake server.
type Response struct {
	// Status defaults to 200.
	Status int
	// Header holds extra response headers.
	Header http.Header
	// Steps make up the body.
	Steps []Step
}

// SSE returns a 200 text/event-stream response made of steps.
func SSE(steps ...Step) Response {
	return Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}}, Steps: steps}
}

// ErrorResponse returns a JSON error response with the given status and body.
// header lists extra headers as name, value pairs (such as "Retry-After", "0").
func ErrorResponse(status int, body string, header ...string) Response {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return Response{Status: status, Header: h, Steps: []Step{Raw(body)}}
}

// Request is a request a fake server received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	// Body is the JSON body, decoded; RawBody is as sent.
	Body    map[string]any
	RawBody []byte
}

// Server is a fake provider server.
type Server struct {
	// URL is the server's base URL, without a path.
	URL string

	t         testing.TB
	srv       *httptest.Server
	endpoint  string
	errorBody func(msg string) string
	closing   chan struct{}
	held      chan struct{}
	gone      chan struct{}
	heldOnce  sync.Once
	goneOnce  sync.Once

	mu        sync.Mutex
	responses []Response
	requests  []Request
}

// NewOpenAIServer starts a fake OpenAI-compatible server that answers POSTs
// to any path ending in /chat/completions with responses, in order. It is
// closed when the test ends.
func NewOpenAIServer(t testing.TB, responses ...Response) *Server {
	return newServer(t, "/chat/completions", func(msg string) string {
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": nil}})
		return string(b)
	}, responses)
}

// NewAnthropicServer starts a fake Anthropic server that answers POSTs to
// any path ending in /v1/messages with responses, in order. It is closed when
// the test ends.
func NewAnthropicServer(t testing.TB, responses ...Response) *Server {
	return newServer(t, "/v1/messages", func(msg string) string {
		b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": "not_found_error", "message": msg}})
		return string(b)
	}, responses)
}

func newServer(t testing.TB, endpoint string, errorBody func(string) string, responses []Response) *Server {
	t.Helper()
	s := &Server{
		t:         t,
		endpoint:  endpoint,
		errorBody: errorBody,
		closing:   make(chan struct{}),
		held:      make(chan struct{}),
		gone:      make(chan struct{}),
		responses: responses,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(func() {
		close(s.closing)
		s.srv.Close()
	})
	return s
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Held is closed when a response reaches a Hold step.
func (s *Server) Held() <-chan struct{} { return s.held }

// ClientGone is closed when the client of a held or waiting response has
// gone away (cancelled its request or closed the connection).
func (s *Server) ClientGone() <-chan struct{} { return s.gone }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), RawBody: body}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &rec.Body); err != nil {
			s.t.Errorf("enginetest: request body is not a JSON object: %v", err)
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	var resp Response
	ok := len(s.responses) > 0
	if ok {
		resp, s.responses = s.responses[0], s.responses[1:]
	}
	s.mu.Unlock()

	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, s.endpoint) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, s.errorBody(fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)))
		return
	}
	if !ok {
		s.t.Errorf("enginetest: unexpected request %d to %s: no response left", len(s.Requests()), r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, s.errorBody("enginetest: no response left"))
		return
	}

	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(cmp.Or(resp.Status, http.StatusOK))
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	for _, st := range resp.Steps {
		switch {
		case st.disconnect:
			// Abort the response: the client sees the connection drop
			// before the end of the chunked body.
			panic(http.ErrAbortHandler)
		case st.hold:
			s.heldOnce.Do(func() { close(s.held) })
			s.waitClient(r, nil)
			return
		case st.wait != nil:
			if !s.waitClient(r, st.wait) {
				return
			}
		default:
			if _, err := w.Write(st.write); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}

// waitClient blocks until ch is closed (true), or the client goes away or
// the server closes (false).
func (s *Server) waitClient(r *http.Request, ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-r.Context().Done():
		s.goneOnce.Do(func() { close(s.gone) })
		return false
	case <-s.closing:
		return false
	}
}
