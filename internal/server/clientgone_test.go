package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/auth"
	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// loud is a slog handler that keeps the records at Warn and above.
type loud struct {
	mu   sync.Mutex
	msgs []string
}

func (h *loud) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *loud) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.mu.Lock()
	h.msgs = append(h.msgs, b.String())
	h.mu.Unlock()
	return nil
}
func (h *loud) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *loud) WithGroup(string) slog.Handler      { return h }

func (h *loud) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.msgs
	h.msgs = nil
	return m
}

// oneTenant lets every request in as one tenant, so that the handlers
// themselves reach the database.
type oneTenant string

func (a oneTenant) Authenticate(*http.Request) (httpapi.Principal, error) {
	return httpapi.Principal{Tenant: string(a)}, nil
}

// TestClientGoneIsNoError: a client that goes away mid-request (a browser
// tab of the console closed while it loads a transcript, say) makes the
// request's database calls fail with "context canceled". That is no fault
// of the server's: no surface logs it at WARN or ERROR, whether it fails in
// authentication (a key or session lookup) or in the handler, and nothing
// is written. The requests here run on contexts ended before they start,
// which is where a closed connection leaves a request that still runs.
func TestClientGoneIsNoError(t *testing.T) {
	t.Parallel()
	st := store.New(dbtest.Pool(t))
	key, secret, err := auth.CreateKey(context.Background(), st, "client-gone", "")
	if err != nil {
		t.Fatal(err)
	}
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())
	newAPI := func(a httpapi.Authenticator) (*server.API, *loud) {
		h := &loud{}
		return server.NewAPI(server.APIDeps{
			Store: st, Reader: stream.NewReader(st, notify.NewHub(store.ParseIDs), 0), Engines: engines,
			Auth: a, Logger: slog.New(h),
		}), h
	}
	id := uuid.New().String()
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	type call struct{ method, path, contentType, body string }
	for _, tc := range []struct {
		name  string
		auth  httpapi.Authenticator
		basic bool
		calls []call
	}{
		{"handlers", oneTenant("client-gone-" + uuid.NewString()), false, []call{
			{"GET", "/v1/jobs", "", ""},
			{"GET", "/v1/jobs/" + id, "", ""},
			{"GET", "/v1/jobs/" + id + "/transcript", "", ""},
			{"GET", "/v1/jobs/" + id + "/audit", "", ""},
			{"POST", "/v1/jobs/" + id + "/cancel", "application/json", "{}"},
			{"POST", "/v1/jobs", "application/json", `{"engine":"sim","command":"hi"}`},
			{"GET", "/v1/responses/resp_" + strings.ReplaceAll(id, "-", ""), "", ""},
			{"POST", "/Monolith/api/engine/runPixel", "application/x-www-form-urlencoded",
				form("expression", `LLM(engine="sim", command="<encode>hi</encode>");`, "insightId", "new")},
		}},
		{"authentication", auth.New(st, auth.Config{}), true, []call{
			{"GET", "/v1/jobs", "", ""},
			{"GET", "/v1/responses/resp_x", "", ""},
			{"GET", "/Monolith/api/config", "", ""},
			{"POST", "/Monolith/api/engine/pixelJobStreaming", "application/x-www-form-urlencoded", form("jobId", id)},
		}},
		{"login", auth.New(st, auth.Config{}), false, []call{
			{"POST", "/Monolith/api/auth/login", "application/x-www-form-urlencoded",
				form("username", key.AccessKey, "password", secret, "disableRedirect", "true")},
		}},
	} {
		api, logs := newAPI(tc.auth)
		for _, c := range tc.calls {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			r := httptest.NewRequestWithContext(ctx, c.method, c.path, strings.NewReader(c.body))
			if c.contentType != "" {
				r.Header.Set("Content-Type", c.contentType)
			}
			if tc.basic {
				r.SetBasicAuth(key.AccessKey, secret)
			}
			w := httptest.NewRecorder()
			api.ServeHTTP(w, r)
			for _, m := range logs.take() {
				t.Errorf("%s: %s %s with the client gone logged %s", tc.name, c.method, c.path, m)
			}
			if w.Code >= 500 {
				t.Errorf("%s: %s %s with the client gone: %d %s, want nothing written", tc.name, c.method, c.path, w.Code, w.Body)
			}
		}
	}
}
