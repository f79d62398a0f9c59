package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

// pathTenant lets every request in, as one tenant for the native API and
// another for SEMOSS, so the two surfaces' jobs can be counted apart.
type pathTenant struct{ native, semoss string }

func (a pathTenant) Authenticate(r *http.Request) (httpapi.Principal, error) {
	if strings.HasPrefix(r.URL.Path, "/Monolith/") {
		return httpapi.Principal{Tenant: a.semoss}, nil
	}
	return httpapi.Principal{Tenant: a.native}, nil
}

// hostileJSON are seeds of the classes of input PostgreSQL refuses, and of
// what would fail a job at run time.
var hostileJSON = []string{
	`{"command":"hi"}`,
	`"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, `"\ud83d\ude00"`,
	`"\u0000"`, `{"\u0000":1}`, `{"a":{"k\u0000":[1]}}`,
	`1e999999`, `-1e999999`, `1e-20000`, `0.0e-99999`, `1e131072`, `[1e1073741823]`,
	`[{"role":"wizard","content":"x"}]`, `[]`, `[{"role":"user","content":""}]`, `5`, `{}`, `null`,
	"\"\xff\"", `{"command":"a\u0000b"}`, `{"messages":[{"role":"user","content":"\ud800"}]}`,
	`{"command":"x","params":{"full_prompt":7}}`, `{"command":"","params":{"full_prompt":null}}`,
	strings.Repeat("[", 600) + strings.Repeat("]", 600),
}

// FuzzSubmit drives arbitrary JSON through the real handlers of both
// surfaces into real PostgreSQL: as a POST /v1/jobs body, as a param's
// value and as messages, and on SEMOSS as paramValues and as insightId
// (form-encoded and as a JSON body). No request may get a 5xx, and nothing
// may be half-written: every job stored is one a client was told about,
// and every SEMOSS job has its pixel metadata.
func FuzzSubmit(f *testing.F) {
	for _, s := range hostileJSON {
		f.Add(s)
	}
	pool := dbtest.Pool(f)
	st := store.New(pool)
	hub := notify.NewHub(store.ParseIDs)
	testserver.StartListener(f, dbtest.URL(f), "", hub, nil)
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())
	tenants := pathTenant{native: "fuzz-native-" + testserver.Tenant(f), semoss: "fuzz-semoss-" + testserver.Tenant(f)}
	api := server.NewAPI(server.APIDeps{
		Store: st, Reader: stream.NewReader(st, hub, time.Hour), Engines: engines, Auth: tenants,
		Config: httpapi.Config{MaxBodyBytes: 64 << 10},
	})
	srv := httptest.NewServer(api)
	f.Cleanup(srv.Close)
	var created atomic.Int64 // jobs the clients were told about

	f.Fuzz(func(t *testing.T, raw string) {
		type call struct{ path, contentType, body string }
		calls := []call{{"/v1/jobs", "application/json", raw}}
		if json.Valid([]byte(raw)) {
			calls = append(calls,
				call{"/v1/jobs", "application/json", `{"command":"x","params":{"p":` + raw + `}}`},
				call{"/v1/jobs", "application/json", `{"messages":` + raw + `}`},
				call{"/v1/jobs", "application/json", `{"command":"x","params":{"full_prompt":` + raw + `}}`},
				call{"/Monolith/api/engine/runPixelAsync", "application/json",
					`{"expression":"LLM(engine=\"sim\", command=\"x\")","insightId":` + raw + `}`},
			)
		}
		form := func(v url.Values) call {
			return call{"/Monolith/api/engine/runPixelAsync", "application/x-www-form-urlencoded", v.Encode()}
		}
		calls = append(calls,
			form(url.Values{"expression": {`LLM(engine="sim", command="x", paramValues=[` + raw + `])`}}),
			form(url.Values{"expression": {`LLM(engine="sim", command="x")`}, "insightId": {raw}}),
			form(url.Values{"expression": {`LLM(engine="sim", command=` + fmt.Sprintf("%q", raw) + `)`}}),
		)
		for _, c := range calls {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.contentType)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("POST %s %q: %d %s", c.path, c.body, resp.StatusCode, body)
			}
			if resp.StatusCode == http.StatusCreated || (resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"jobId"`)) {
				created.Add(1)
			}
		}
		ctx := context.Background()
		var jobs, orphans int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE tenant = $1 OR tenant = $2`, tenants.native, tenants.semoss).Scan(&jobs); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM jobs j WHERE j.tenant = $1 AND NOT EXISTS (SELECT 1 FROM pixel_jobs p WHERE p.job_id = j.id)`, tenants.semoss).Scan(&orphans); err != nil {
			t.Fatal(err)
		}
		if jobs != created.Load() || orphans != 0 {
			t.Fatalf("after %q: %d jobs stored, %d announced; %d SEMOSS jobs without their pixel", raw, jobs, created.Load(), orphans)
		}
	})
}
