package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/anthropic"
	"github.com/jobstream/jobstream/internal/engine/enginetest"
	"github.com/jobstream/jobstream/internal/engine/openai"
	"github.com/jobstream/jobstream/internal/engine/responses"
	"github.com/jobstream/jobstream/internal/engine/upstream"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/worker"
)

// TestProviderRowsStored replays every provider fixture (parallel tool
// calls, UTF-8 split across writes, usage-only final chunk, mid-stream
// disconnect, 429 then success, error events, Anthropic thinking + tool
// use, ...) through a real worker and PostgreSQL, and asserts the exact
// chunk rows stored and the job's terminal status.
func TestProviderRowsStored(t *testing.T) {
	t.Parallel()

	type provider struct {
		name     string
		fixtures []enginetest.Fixture
		newSrv   func(testing.TB, ...enginetest.Response) *enginetest.Server
		newEng   func(url string) (engine.Engine, error)
	}
	fast := upstream.Policy{RetryBaseDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond, IdleTimeout: 5 * time.Second}
	providers := []provider{
		{"OpenAI", enginetest.OpenAIFixtures(), enginetest.NewOpenAIServer, func(url string) (engine.Engine, error) {
			return openai.New(openai.Config{Model: "gpt-test", BaseURL: url, APIKey: enginetest.APIKey, Policy: fast})
		}},
		{"OpenAIResponses", enginetest.ResponsesFixtures(), enginetest.NewResponsesServer, func(url string) (engine.Engine, error) {
			return responses.New(responses.Config{Model: "gpt-test", BaseURL: url, APIKey: enginetest.APIKey, Policy: fast})
		}},
		{"Anthropic", enginetest.AnthropicFixtures(), enginetest.NewAnthropicServer, func(url string) (engine.Engine, error) {
			return anthropic.New(anthropic.Config{Model: "claude-test", BaseURL: url, APIKey: enginetest.APIKey, Policy: fast})
		}},
	}
	// One isolated database and one worker for every fixture: each fixture
	// gets its own engine id.
	st := dbtest.IsolatedStore(t)
	reg := engine.NewRegistry()
	type run struct {
		name string
		f    enginetest.Fixture
	}
	var runs []run
	for _, p := range providers {
		for _, f := range p.fixtures {
			srv := p.newSrv(t, f.Responses...)
			eng, err := p.newEng(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			reg.Register(engine.Info{ID: p.name + f.Name, Provider: p.name}, eng)
			runs = append(runs, run{p.name + f.Name, f})
		}
	}
	runWorker(t, st, reg)
	for _, r := range runs {
		f := r.f
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			{
				tenant := t.Name()
				job, err := st.Submit(context.Background(), store.SubmitParams{
					Tenant: tenant, Engine: r.name,
					Request: store.Request{Command: "What's the weather in Paris?"},
				})
				if err != nil {
					t.Fatal(err)
				}
				snap := waitTerminal(t, st, tenant, job.ID)

				var got []string
				for _, c := range snap.Chunks {
					b, _ := json.Marshal(map[string]any{"stream_type": c.StreamType, "data": json.RawMessage(c.Data)})
					got = append(got, enginetest.Canonical(string(b)))
				}
				want := f.Rows()
				wantStatus := store.StatusCompleted
				if f.ErrType != "" {
					wantStatus = store.StatusFailed
					// A failed turn ends with the worker's error chunk.
					last := got[len(got)-1]
					var d struct {
						FinishReason string `json:"finish_reason"`
						Error        struct{ Type, Message string }
					}
					var row struct{ Data json.RawMessage }
					_ = json.Unmarshal([]byte(last), &row)
					_ = json.Unmarshal(row.Data, &d)
					if d.FinishReason != "error" || d.Error.Type != f.ErrType {
						t.Errorf("last chunk = %s, want an error finish chunk of type %s", last, f.ErrType)
					}
					if containsKey(last) {
						t.Errorf("error chunk echoes the API key: %s", last)
					}
					got = got[:len(got)-1]
				}
				for i := range want {
					want[i] = enginetest.Canonical(want[i])
				}
				enginetest.CheckChunks(t, got, want)
				if snap.Status != wantStatus {
					t.Errorf("status = %s, want %s", snap.Status, wantStatus)
				}
				for i, c := range snap.Chunks {
					if c.Seq != i {
						t.Fatalf("chunk %d has seq %d: seqs must be gap-free from 0", i, c.Seq)
					}
				}
			}
		})
	}
}

func containsKey(s string) bool { return strings.Contains(s, enginetest.APIKey) }

// runWorker runs a worker until the test ends.
func runWorker(t *testing.T, st *store.Store, reg *engine.Registry) *worker.Worker {
	t.Helper()
	w := worker.New(st, reg, worker.Config{PollInterval: 20 * time.Millisecond, LeaseTTL: 10 * time.Second, ShutdownGrace: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// waitTerminal long-polls the job until it ends and returns all its chunks.
func waitTerminal(t *testing.T, st *store.Store, tenant string, jobID uuid.UUID) store.Snapshot {
	t.Helper()
	r := stream.NewReader(st, nil, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		snap, err := r.Read(ctx, stream.Params{Tenant: tenant, JobID: jobID, Limit: 10000, Wait: 10 * time.Second})
		if err != nil {
			t.Fatalf("wait for job %s: %v", jobID, err)
		}
		if snap.Terminal() {
			return snap
		}
	}
}
