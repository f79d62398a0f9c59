package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestRunAddrInUse: when the HTTP address cannot be bound, Run stops its
// workers and returns the error, rather than waiting on workers nobody
// told to stop.
func TestRunAddrInUse(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	cfg := testserver.ServeConfig(t, testserver.Database(t), "--addr", taken.Addr().String(), "--max-conns", "2")
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())

	// Run's context never ends by itself: only the failure may stop it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg, server.Deps{Engines: engines}) }()
	timeout := time.NewTimer(testserver.Timeout)
	defer timeout.Stop()
	select {
	case err := <-done:
		cancel()
		if err == nil || !strings.Contains(err.Error(), "listen on") {
			t.Fatalf("Run = %v, want a listen error", err)
		}
	case <-timeout.C:
		cancel()
		<-done
		t.Fatalf("Run did not return within %s after failing to listen", testserver.Timeout)
	}
}

// TestServeBoundsRuntimeAndTenants: serve's --max-runtime reaches the API
// (a sim job that could not end within it is a 400) and the workers (a job
// still running at it fails with a timeout error), and
// --max-running-per-tenant the claims (issue 18, item 2).
func TestServeBoundsRuntimeAndTenants(t *testing.T) {
	t.Parallel()
	cfg := testserver.ServeConfig(t, testserver.Database(t), "--max-runtime", "1s", "--max-running-per-tenant", "1", "--concurrency", "4", "--shutdown-grace", "0s")
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())
	addr := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, cfg, server.Deps{Engines: engines, Listening: func(a net.Addr) { addr <- a }})
	}()
	defer func() { cancel(); <-done }()
	c := &client.Client{BaseURL: "http://" + testserver.Recv(t, addr, "the server to listen").String()}

	_, err := c.Submit(ctx, jobsapi.CreateJobRequest{Command: "wait", Params: map[string]json.RawMessage{"sim_first_token_delay": json.RawMessage("60")}})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest || !strings.Contains(ce.Message, "maximum runtime") {
		t.Errorf("a sim job of a minute under --max-runtime 1s: %v, want a 400 naming the maximum runtime", err)
	}

	// Answering a tool result, the sim writes 1,000 tokens at 10 a
	// second: its params pass (it might have been a short tool call), and
	// the workers stop it after a second.
	long := jobsapi.CreateJobRequest{
		Messages: json.RawMessage(`[{"role":"user","content":"weather?"},
			{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"c1","content":"sunny"}]`),
		Params: map[string]json.RawMessage{
			"tools":                 json.RawMessage(`[{"type":"function","function":{"name":"f"}}]`),
			"sim_tokens":            json.RawMessage("1000"),
			"sim_tokens_per_second": json.RawMessage("10"),
		},
	}
	first, err := c.Submit(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Submit(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	var jobs [2]jobsapi.Job
	for i, id := range []uuid.UUID{first.ID, second.ID} {
		page, err := c.Chunks(ctx, id, client.ChunksParams{Offset: 0, Wait: 20 * time.Second})
		for err == nil && !store.Terminal(page.Status) {
			page, err = c.Chunks(ctx, id, client.ChunksParams{Offset: page.NextOffset, Wait: 20 * time.Second})
		}
		if err != nil {
			t.Fatal(err)
		}
		if jobs[i], err = c.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
		if jobs[i].Status != store.StatusFailed || !strings.Contains(string(jobs[i].Error), `"timeout"`) {
			t.Errorf("job %d: %s %s, want failed with a timeout error", i, jobs[i].Status, jobs[i].Error)
		}
	}
	// One job of the tenant at a time: the second started once the
	// first had ended, though three slots were free.
	if jobs[1].StartedAt == nil || jobs[0].FinishedAt == nil || jobs[1].StartedAt.Before(*jobs[0].FinishedAt) {
		t.Errorf("second job started at %v, before the first ended at %v (first started %v, second ended %v)", jobs[1].StartedAt, jobs[0].FinishedAt, jobs[0].StartedAt, jobs[1].FinishedAt)
	}
}
