package semoss_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/pixel"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

type oneTenant string

func (a oneTenant) Authenticate(*http.Request) (httpapi.Principal, error) {
	return httpapi.Principal{Tenant: string(a)}, nil
}

// TestHostileSemoss: on the SEMOSS routes, values PostgreSQL refuses
// (in insightId, in paramValues) are a 400 naming the field and leave no
// job behind; StopPixelExecution with more than pixel.MaxStopIDs ids is a
// 400 before any cancel runs; and an error never echoes a huge input back.
func TestHostileSemoss(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	st := store.New(pool)
	hub := notify.NewHub(store.ParseIDs)
	testserver.StartListener(t, dbtest.URL(t), "", hub, nil)
	tenant := testserver.Tenant(t)
	srv := httptest.NewServer(server.NewAPI(server.APIDeps{
		Store: st, Reader: stream.NewReader(st, hub, time.Hour), Engines: semossEngines(), Auth: oneTenant(tenant),
	}))
	t.Cleanup(srv.Close)
	call := func(path string, form url.Values) (int, []byte) {
		t.Helper()
		resp, err := srv.Client().PostForm(srv.URL+"/Monolith/api"+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	llm := `LLM(engine="sim", command="hi")`
	for _, tc := range []struct {
		name  string
		path  string
		form  url.Values
		field string
	}{
		{"InsightNUL", "/engine/runPixelAsync", url.Values{"expression": {llm}, "insightId": {"in\x00sight"}}, "insightId"},
		{"InsightUTF8", "/engine/runPixelAsync", url.Values{"expression": {llm}, "insightId": {"in\xffsight"}}, "insightId"},
		{"InsightNULSync", "/engine/runPixel", url.Values{"expression": {llm}, "insightId": {"\x00"}}, "insightId"},
		{"ParamNumber", "/engine/runPixelAsync", url.Values{"expression": {`LLM(engine="sim", command="hi", paramValues=[{"temperature": 1e999999}])`}}, "params.temperature"},
		{"ParamNULKey", "/engine/runPixelAsync", url.Values{"expression": {`LLM(engine="sim", command="hi", paramValues=[{"stop": {"\u0000": 1}}])`}}, "NUL"},
		{"CommandNUL", "/engine/runPixelAsync", url.Values{"expression": {"LLM(engine=\"sim\", command=\"a\x00b\")"}}, ""},
	} {
		status, body := call(tc.path, tc.form)
		if status != http.StatusBadRequest || !strings.Contains(string(body), tc.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.name, status, body, tc.field)
		}
	}

	ids := make([]string, pixel.MaxStopIDs+1)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"00000000-0000-7000-8000-%012d"`, i)
	}
	status, body := call("/engine/runPixel", url.Values{"expression": {"StopPixelExecution(id=[" + strings.Join(ids, ",") + "])"}})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "more than the") {
		t.Errorf("StopPixelExecution with %d ids: %d %.300s, want 400", len(ids), status, body)
	}

	var args []string
	for i := range 20_000 {
		args = append(args, fmt.Sprintf("arg%d=1", i))
	}
	status, body = call("/engine/runPixel", url.Values{"expression": {`LLM(command="c", ` + strings.Join(args, ", ") + `)`}})
	var res struct {
		PixelReturn []struct {
			Output string `json:"output"`
		} `json:"pixelReturn"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &res) != nil || len(res.PixelReturn) != 1 || len(res.PixelReturn[0].Output) > 512 {
		t.Errorf("20,000 unknown arguments: %d, %d-byte answer %.300s", status, len(body), body)
	}

	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE tenant = $1`, tenant).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d jobs stored (%v), want none", n, err)
	}
}
