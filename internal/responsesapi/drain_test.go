package responsesapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCreateWhileDraining: once the node drains (SIGTERM), a create
// request, whether background, streaming or synchronous, is refused with
// 503 and Retry-After in OpenAI's shape, as the other surfaces refuse new
// work, and no job is stored on a node that has stopped claiming.
func TestCreateWhileDraining(t *testing.T) {
	t.Parallel()
	b := setup(t, options{noWorker: true})
	b.api.Drain()
	for name, extra := range map[string]string{
		"Sync": ``, "Background": `,"background":true`, "Stream": `,"stream":true`,
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/v1/responses",
				strings.NewReader(`{"model":"sim","input":"hi"`+extra+`}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+b.keyA)
			resp, err := b.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", resp.StatusCode, string(body))
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Fatalf("503 without Retry-After")
			}
			_, typ, _, code := openAIError(t, body)
			if typ != "server_error" || deref(code) != "draining" {
				t.Fatalf("error %s", string(body))
			}
		})
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d jobs stored while draining", n)
	}
}
