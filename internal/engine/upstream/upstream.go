// Package upstream holds what jobstream's HTTP model providers (packages
// openai and anthropic) share: the failure policy of one streamed model call
// and the translation of upstream failures into *engine.Error.
//
// The policy (issue "Real model providers", item 5):
//
//   - A call is retried with backoff only while nothing has been emitted: an
//     HTTP 408/409/429/5xx, a refused or reset connection, a timeout, or an
//     error event that arrives before the first chunk. Once a chunk is out the
//     job has visible output, so the call fails instead.
//   - Retry-After (seconds or an HTTP date) and retry-after-ms are honoured,
//     capped at Policy.MaxRetryDelay; otherwise the delay is exponential from
//     Policy.RetryBaseDelay with jitter. The SDKs' own retries are turned off
//     by the providers so that this is the only retry loop.
//   - An upstream that sends no bytes for Policy.IdleTimeout fails the attempt
//     with type "timeout"; Policy.Timeout bounds one whole attempt.
//   - Cancelling the caller's context aborts the HTTP request at once and
//     returns ctx.Err(); it is neither retried nor counted as a failure.
//   - Error messages carry the upstream's own message, scrubbed of the API
//     key and of anything that looks like a bearer token.
package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jobstream/jobstream/internal/engine"
)

// Defaults of Policy's fields.
const (
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultMaxRetries     = 2
	DefaultRetryBaseDelay = 500 * time.Millisecond
	DefaultMaxRetryDelay  = 30 * time.Second
)

// Error types of the *engine.Error values this package returns. The set is
// small and fixed so that it can label metrics; the upstream's own error type
// goes into the message.
const (
	TypeInvalidRequest = "invalid_request"  // HTTP 400/404/413/422, bad params
	TypeAuth           = "auth_error"       // HTTP 401/403
	TypeRateLimited    = "rate_limited"     // HTTP 429, rate_limit_error events
	TypeTimeout        = "timeout"          // idle or whole-request timeout, HTTP 408
	TypeConnection     = "connection_error" // refused, reset, dropped mid-stream
	TypeUpstream       = "upstream_error"   // HTTP 5xx, error events, malformed streams
)

// Policy is the failure policy of one engine.
type Policy struct {
	// Timeout bounds one attempt, from sending the request to the end of the
	// stream. Zero means no limit (the default): long answers are normal, and
	// IdleTimeout catches a hung upstream.
	Timeout time.Duration

	// IdleTimeout fails an attempt when the upstream sends no bytes for this
	// long, waiting for the response headers included. Defaults to 2 minutes
	// (DefaultIdleTimeout), long enough for reasoning models that are silent
	// while they think; negative disables it.
	IdleTimeout time.Duration

	// MaxRetries is how many times a failed attempt is retried before the
	// first chunk. Defaults to 2 (DefaultMaxRetries); negative means none.
	MaxRetries int

	// RetryBaseDelay is the first backoff delay, doubled on each retry, with
	// jitter. Defaults to 500 ms (DefaultRetryBaseDelay).
	RetryBaseDelay time.Duration

	// MaxRetryDelay caps every backoff delay, Retry-After included. Defaults
	// to 30 s (DefaultMaxRetryDelay).
	MaxRetryDelay time.Duration

	// OnRetry, if set, is called before each retry with the retry's number
	// (1 for the first retry) and the failure that caused it. For metrics.
	OnRetry func(attempt int, err error)

	// OnFailure, if set, is called once when a call fails for good, with the
	// *engine.Error's Type. Not called for cancellation or emit errors.
	OnFailure func(errType string)
}

func (p Policy) idleTimeout() time.Duration {
	if p.IdleTimeout == 0 {
		return DefaultIdleTimeout
	}
	return max(p.IdleTimeout, 0)
}

func (p Policy) maxRetries() int {
	if p.MaxRetries == 0 {
		return DefaultMaxRetries
	}
	return max(p.MaxRetries, 0)
}

func (p Policy) retryBaseDelay() time.Duration {
	if p.RetryBaseDelay <= 0 {
		return DefaultRetryBaseDelay
	}
	return p.RetryBaseDelay
}

func (p Policy) maxRetryDelay() time.Duration {
	if p.MaxRetryDelay <= 0 {
		return DefaultMaxRetryDelay
	}
	return p.MaxRetryDelay
}

// NewHTTPClient returns the HTTP client an engine uses when none is given:
// its own copy of the default transport, and no client-level timeout (the
// Policy's timeouts apply per attempt).
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
}

// Caller runs upstream calls under a Policy.
type Caller struct {
	Policy Policy
	// Secrets are strings never to be shown in an error message (the API key).
	Secrets []string
}

var (
	errIdle           = errors.New("upstream idle timeout")
	errRequestTimeout = errors.New("upstream request timeout")
)

// Do runs fn, once per attempt, until it returns nil, fails for good, or ctx
// ends. fn must send its request with at.Middleware installed, emit chunks
// only through at.Emit, and return the upstream's errors as they are (or as
// an *engine.Error for failures it recognises itself, such as error events).
//
// Do returns nil, ctx.Err() when ctx ends, the emit callback's own error
// unchanged, or an *engine.Error.
func (c *Caller) Do(ctx context.Context, fn func(ctx context.Context, at *Attempt) error) error {
	retries := c.Policy.maxRetries()
	for n := 1; ; n++ {
		at := &Attempt{n: n, idle: c.Policy.idleTimeout()}
		err := at.run(ctx, c.Policy.Timeout, fn)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ee *emitError
		if errors.As(err, &ee) {
			return ee.err
		}
		e := c.classify(at, err)
		if e.Retryable && !at.emitted && n <= retries {
			if c.Policy.OnRetry != nil {
				c.Policy.OnRetry(n, e)
			}
			if err := sleep(ctx, c.delay(at, n)); err != nil {
				return err
			}
			continue
		}
		e.Retryable = e.Retryable && !at.emitted
		if n > 1 {
			e.Message += fmt.Sprintf(" (after %d attempts)", n)
		}
		return c.Fail(e)
	}
}

// Fail reports e to Policy.OnFailure and returns it, with its message
// scrubbed. Providers use it for failures found before any request is sent,
// such as invalid params.
func (c *Caller) Fail(e *engine.Error) *engine.Error {
	e.Message = c.Redact(e.Message)
	if c.Policy.OnFailure != nil {
		c.Policy.OnFailure(e.Type)
	}
	return e
}

// classify turns the error of a failed attempt into an *engine.Error.
func (c *Caller) classify(at *Attempt, err error) *engine.Error {
	switch at.cause {
	case errIdle:
		return &engine.Error{Type: TypeTimeout, Message: fmt.Sprintf("upstream sent no data for %s", at.idle), Retryable: true}
	case errRequestTimeout:
		return &engine.Error{Type: TypeTimeout, Message: fmt.Sprintf("upstream request exceeded the %s timeout", c.Policy.Timeout), Retryable: true}
	}
	if at.status >= 400 {
		return c.httpError(at.status, at.header, at.body)
	}
	if at.notStream {
		msg := "upstream answered with JSON instead of an event stream"
		if m := errorMessage(at.body); m != "" {
			msg += ": " + m
		}
		return &engine.Error{Type: TypeUpstream, Message: c.Redact(msg)}
	}
	var ee *engine.Error
	if errors.As(err, &ee) {
		cp := *ee
		cp.Message = c.Redact(cp.Message)
		return &cp
	}
	e := &engine.Error{Type: TypeUpstream, Message: c.Redact(err.Error())}
	var ne net.Error
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		e.Type, e.Message, e.Retryable = TypeConnection, "upstream closed the connection mid-stream", true
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Type, e.Message, e.Retryable = TypeConnection, "upstream refused the connection: "+c.Redact(err.Error()), true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF):
		e.Type, e.Message, e.Retryable = TypeConnection, "upstream connection was reset: "+c.Redact(err.Error()), true
	case errors.As(err, &ne) && ne.Timeout():
		e.Type, e.Message, e.Retryable = TypeTimeout, "upstream timed out: "+c.Redact(err.Error()), true
	case errors.As(err, new(*net.OpError)), errors.As(err, new(*net.DNSError)):
		e.Type, e.Message, e.Retryable = TypeConnection, "upstream connection failed: "+c.Redact(err.Error()), true
	}
	// Keep the cause for errors.Is unless its text would leak a secret.
	if c.Redact(err.Error()) == err.Error() {
		e.Err = err
	}
	return e
}

// httpError classifies an HTTP error response.
func (c *Caller) httpError(status int, header http.Header, body []byte) *engine.Error {
	e := &engine.Error{Type: TypeUpstream, Retryable: status >= 500}
	switch {
	case status == http.StatusTooManyRequests:
		e.Type, e.Retryable = TypeRateLimited, true
	case status == http.StatusRequestTimeout:
		e.Type, e.Retryable = TypeTimeout, true
	case status == http.StatusConflict:
		e.Retryable = true
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		e.Type = TypeAuth
	case status < 500:
		e.Type = TypeInvalidRequest
	}
	// Both OpenAI and Anthropic may say explicitly whether to retry.
	switch header.Get("X-Should-Retry") {
	case "true":
		e.Retryable = true
	case "false":
		e.Retryable = false
	}
	text := http.StatusText(status)
	if status == 529 {
		text = "Overloaded" // Anthropic's
	}
	e.Message = strings.TrimSpace(fmt.Sprintf("upstream returned %d %s", status, text))
	if msg := errorMessage(body); msg != "" {
		e.Message += ": " + msg
	}
	e.Message = c.Redact(e.Message)
	return e
}

// StreamError returns the *engine.Error for an error reported inside a
// stream (an OpenAI {"error":{..}} chunk, an Anthropic "error" event).
// upstreamType is the provider's error type, such as "overloaded_error".
func StreamError(upstreamType, message string) *engine.Error {
	e := &engine.Error{Type: TypeUpstream, Retryable: true}
	switch strings.ToLower(upstreamType) {
	case "rate_limit_error", "rate_limit_exceeded", "rate_limited", "requests", "tokens":
		e.Type = TypeRateLimited
	case "timeout_error", "timeout":
		e.Type = TypeTimeout
	case "invalid_request_error", "invalid_request", "badrequesterror", "not_found_error", "request_too_large",
		"context_length_exceeded":
		e.Type, e.Retryable = TypeInvalidRequest, false
	case "authentication_error", "permission_error", "invalid_api_key":
		e.Type, e.Retryable = TypeAuth, false
	}
	e.Message = "upstream error"
	if upstreamType != "" {
		e.Message += " (" + upstreamType + ")"
	}
	if message != "" {
		e.Message += ": " + message
	}
	return e
}

// errorMessage extracts a human-readable message from an error response
// body in any of the shapes providers use: {"error":{"message":..}} (OpenAI,
// Anthropic, OpenRouter), {"error":".."} (Ollama), {"message":..} (vLLM,
// proxies), {"detail":..} (FastAPI). Other bodies give their first line of
// text, or nothing for HTML.
func errorMessage(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message json.RawMessage `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil {
		if len(v.Error) > 0 {
			var inner struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			}
			if json.Unmarshal(v.Error, &inner) == nil && inner.Message != "" {
				return truncate(inner.Message)
			}
			if s := jsonText(v.Error); s != "" {
				return truncate(s)
			}
		}
		for _, raw := range []json.RawMessage{v.Message, v.Detail} {
			if s := jsonText(raw); s != "" {
				return truncate(s)
			}
		}
		return truncate(string(body))
	}
	if bytes.HasPrefix(body, []byte("<")) {
		return ""
	}
	line, _, _ := strings.Cut(string(body), "\n")
	return truncate(line)
}

// jsonText returns a JSON string's value, or any other JSON value as text.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

const maxMessage = 1000

func truncate(s string) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
	if len(s) <= maxMessage {
		return s
	}
	i := maxMessage
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}

// tokenLike matches bearer tokens and OpenAI-style keys that an upstream
// might echo back.
var tokenLike = regexp.MustCompile(`(?i)\bbearer\s+[^\s"',]+|\bsk-[A-Za-z0-9_\-*]{6,}`)

// Redact removes the Caller's secrets, and anything that looks like a bearer
// token or an API key, from s.
func (c *Caller) Redact(s string) string {
	for _, sec := range c.Secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return tokenLike.ReplaceAllString(s, "[redacted]")
}

// delay returns how long to wait before retry n (1-based).
func (c *Caller) delay(at *Attempt, n int) time.Duration {
	limit := c.Policy.maxRetryDelay()
	if d, ok := RetryAfter(at.header, time.Now()); ok {
		return min(d, limit)
	}
	d := c.Policy.retryBaseDelay() << min(n-1, 20)
	d = min(d, limit)
	// Jitter: wait between 75 % and 100 % of d, so that many jobs that failed
	// together do not retry together.
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// RetryAfter reads the delay an upstream asked for: retry-after-ms
// (milliseconds, OpenAI and Anthropic), or Retry-After in seconds or as an
// HTTP date. ok is false when there is no usable header.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	if h == nil {
		return 0, false
	}
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return time.Duration(ms * float64(time.Millisecond)), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
