package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/enginetest"
	"github.com/jobstream/jobstream/internal/metrics"
)

// Provider failures of engines loaded by serve are counted in the
// jobstream_provider_failures_total metric, by engine id and error type.
func TestLoadEnginesCountsProviderFailures(t *testing.T) {
	t.Parallel()
	srv := enginetest.NewOpenAIServer(t, enginetest.ErrorResponse(401, `{"error":{"message":"bad key","type":"invalid_request_error"}}`))
	file := filepath.Join(t.TempDir(), "engines.yaml")
	yaml := "engines:\n  - id: failing-engine\n    provider: openai\n    model: m\n    base_url: " + srv.URL + "\n    api_key_env: TEST_KEY\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := loadEngines(file, func(k string) string { return map[string]string{"TEST_KEY": "k"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	e, err := reg.Get("failing-engine")
	if err != nil {
		t.Fatal(err)
	}
	counter := metrics.ProviderFailures.WithLabelValues("failing-engine", "auth_error")
	before := testutil.ToFloat64(counter)
	_, err = e.Stream(context.Background(), engine.Request{Messages: []engine.Message{{Role: "user", Content: "hi"}}}, func(engine.Chunk) error { return nil })
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Type != "auth_error" {
		t.Fatalf("Stream error = %v, want an auth_error", err)
	}
	if got := testutil.ToFloat64(counter) - before; got != 1 {
		t.Fatalf("provider_failures_total{engine=failing-engine,type=auth_error} grew by %v, want 1", got)
	}
}
