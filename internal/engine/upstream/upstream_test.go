package upstream

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/engine"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()

	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		header http.Header
		want   time.Duration
		wantOK bool
	}{
		{"None", http.Header{}, 0, false},
		{"Seconds", http.Header{"Retry-After": {"7"}}, 7 * time.Second, true},
		{"FractionalSeconds", http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond, true},
		{"HTTPDate", http.Header{"Retry-After": {"Sat, 01 Mar 2025 12:00:30 GMT"}}, 30 * time.Second, true},
		{"HTTPDateInThePast", http.Header{"Retry-After": {"Sat, 01 Mar 2025 11:00:00 GMT"}}, 0, true},
		{"Milliseconds", http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"1"}}, 250 * time.Millisecond, true},
		{"Negative", http.Header{"Retry-After": {"-3"}}, 0, false},
		{"Garbage", http.Header{"Retry-After": {"soon"}}, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := RetryAfter(tt.header, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("RetryAfter = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	t.Parallel()

	c := &Caller{Policy: Policy{RetryBaseDelay: 100 * time.Millisecond, MaxRetryDelay: time.Second}}

	t.Run("ExponentialWithJitter", func(t *testing.T) {
		t.Parallel()
		for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 10: time.Second} {
			for range 20 {
				d := c.delay(&Attempt{}, n)
				if d > want || d < want*3/4 {
					t.Fatalf("delay(%d) = %v, want within [%v, %v]", n, d, want*3/4, want)
				}
			}
		}
	})

	t.Run("RetryAfterCapped", func(t *testing.T) {
		t.Parallel()
		if d := c.delay(&Attempt{header: http.Header{"Retry-After": {"3600"}}}, 1); d != time.Second {
			t.Errorf("delay = %v, want the 1s cap", d)
		}
		if d := c.delay(&Attempt{header: http.Header{"Retry-After": {"0"}}}, 3); d != 0 {
			t.Errorf("delay = %v, want 0 as asked", d)
		}
	})
}

func TestHTTPError(t *testing.T) {
	t.Parallel()

	c := &Caller{Secrets: []string{"key-123456"}}
	for _, tt := range []struct {
		name          string
		status        int
		header        http.Header
		body          string
		wantType      string
		wantRetryable bool
		wantMessage   string
	}{
		{"OpenAI", 400, nil, `{"error":{"message":"bad param","type":"invalid_request_error"}}`, TypeInvalidRequest, false, "upstream returned 400 Bad Request: bad param"},
		{"Anthropic", 529, nil, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, TypeUpstream, true, "upstream returned 529 Overloaded: Overloaded"},
		{"Ollama", 404, nil, `{"error":"model not found"}`, TypeInvalidRequest, false, "upstream returned 404 Not Found: model not found"},
		{"VLLM", 400, nil, `{"object":"error","message":"max_tokens too large","type":"BadRequestError","code":400}`, TypeInvalidRequest, false, "upstream returned 400 Bad Request: max_tokens too large"},
		{"FastAPI", 422, nil, `{"detail":"field required"}`, TypeInvalidRequest, false, "upstream returned 422 Unprocessable Entity: field required"},
		{"HTML", 502, nil, `<html><body>Bad gateway</body></html>`, TypeUpstream, true, "upstream returned 502 Bad Gateway"},
		{"PlainText", 500, nil, "boom\nstack trace", TypeUpstream, true, "upstream returned 500 Internal Server Error: boom"},
		{"RateLimited", 429, nil, `{}`, TypeRateLimited, true, "upstream returned 429 Too Many Requests: {}"},
		{"Timeout", 408, nil, ``, TypeTimeout, true, "upstream returned 408 Request Timeout"},
		{"Forbidden", 403, nil, `{"error":{"message":"no access for key-123456"}}`, TypeAuth, false, "upstream returned 403 Forbidden: no access for [redacted]"},
		{"ShouldRetryHeader", 400, http.Header{"X-Should-Retry": {"true"}}, `{}`, TypeInvalidRequest, true, "upstream returned 400 Bad Request: {}"},
		{"ShouldNotRetryHeader", 503, http.Header{"X-Should-Retry": {"false"}}, ``, TypeUpstream, false, "upstream returned 503 Service Unavailable"},
		{"EchoedBearer", 401, nil, `{"error":{"message":"bad header Authorization: Bearer abc.def"}}`, TypeAuth, false, "upstream returned 401 Unauthorized: bad header Authorization: [redacted]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			e := c.httpError(tt.status, h, []byte(tt.body))
			if e.Type != tt.wantType || e.Retryable != tt.wantRetryable || e.Message != tt.wantMessage {
				t.Errorf("httpError = {%q %v %q}, want {%q %v %q}", e.Type, e.Retryable, e.Message, tt.wantType, tt.wantRetryable, tt.wantMessage)
			}
		})
	}

	t.Run("LongMessageTruncated", func(t *testing.T) {
		t.Parallel()
		e := c.httpError(500, http.Header{}, []byte(`{"error":{"message":"`+strings.Repeat("é", 2000)+`"}}`))
		if len(e.Message) > maxMessage+100 || !strings.HasSuffix(e.Message, "…") {
			t.Errorf("message not truncated: %d bytes", len(e.Message))
		}
	})
}

func TestStreamError(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		upstreamType  string
		wantType      string
		wantRetryable bool
	}{
		{"overloaded_error", TypeUpstream, true},
		{"api_error", TypeUpstream, true},
		{"server_error", TypeUpstream, true},
		{"rate_limit_error", TypeRateLimited, true},
		{"invalid_request_error", TypeInvalidRequest, false},
		{"authentication_error", TypeAuth, false},
		{"", TypeUpstream, true},
	} {
		e := StreamError(tt.upstreamType, "msg")
		if e.Type != tt.wantType || e.Retryable != tt.wantRetryable {
			t.Errorf("StreamError(%q) = {%q %v}, want {%q %v}", tt.upstreamType, e.Type, e.Retryable, tt.wantType, tt.wantRetryable)
		}
	}
}

func TestCallerDo(t *testing.T) {
	t.Parallel()

	fast := Policy{RetryBaseDelay: time.Millisecond, MaxRetryDelay: time.Millisecond}

	t.Run("NoRetryAfterEmit", func(t *testing.T) {
		t.Parallel()
		var attempts int
		c := &Caller{Policy: fast}
		err := c.Do(context.Background(), func(ctx context.Context, at *Attempt) error {
			attempts++
			if err := at.Emit(func(engine.Chunk) error { return nil }, engine.Content("x")); err != nil {
				return err
			}
			return &engine.Error{Type: TypeUpstream, Message: "boom", Retryable: true}
		})
		var ee *engine.Error
		if !errors.As(err, &ee) || ee.Retryable || attempts != 1 {
			t.Errorf("Do = %v after %d attempts, want one non-retryable failure", err, attempts)
		}
	})

	t.Run("CancelledWhileWaiting", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		c := &Caller{Policy: Policy{RetryBaseDelay: time.Hour, MaxRetryDelay: time.Hour,
			OnRetry: func(int, error) { cancel() }}}
		err := c.Do(ctx, func(ctx context.Context, at *Attempt) error {
			return &engine.Error{Type: TypeUpstream, Retryable: true}
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Do = %v, want context.Canceled", err)
		}
	})

	t.Run("WholeRequestTimeout", func(t *testing.T) {
		t.Parallel()
		c := &Caller{Policy: Policy{Timeout: 20 * time.Millisecond, MaxRetries: -1}}
		err := c.Do(context.Background(), func(ctx context.Context, at *Attempt) error {
			<-ctx.Done()
			return ctx.Err()
		})
		var ee *engine.Error
		if !errors.As(err, &ee) || ee.Type != TypeTimeout || !strings.Contains(ee.Message, "20ms timeout") {
			t.Errorf("Do = %v, want a timeout", err)
		}
	})
}
