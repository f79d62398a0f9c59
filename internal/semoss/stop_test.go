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
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/pixel"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestStopAmplification is the amplification of jobstream issue 18 item 3:
// one runPixel of MaxPixels StopPixelExecution pixels of MaxStopIDs ids
// each ran 10,000 cancels and wrote 10,000 audit rows. The cap is now per
// request (a 400 before any cancel runs), and a job id the request repeats,
// in any case, is cancelled once: one audit row.
func TestStopAmplification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New(pool)
	hub := notify.NewHub(store.ParseIDs)
	testserver.StartListener(t, dbtest.URL(t), "", hub, nil)
	tenant := testserver.Tenant(t)
	srv := httptest.NewServer(server.NewAPI(server.APIDeps{
		Store: st, Reader: stream.NewReader(st, hub, time.Hour), Engines: semossEngines(), Auth: oneTenant(tenant),
	}))
	t.Cleanup(srv.Close)
	runPixel := func(expr string) (int, []byte) {
		t.Helper()
		resp, err := srv.Client().PostForm(srv.URL+"/Monolith/api/engine/runPixel", url.Values{"expression": {expr}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	events := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM job_events WHERE tenant = $1 AND event = 'cancel_requested'`, tenant).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The tenant's jobs, so that every cancel is real work.
	var jobs []string
	for range 3 {
		jobs = append(jobs, testserver.RunningJob(t, pool, tenant, "w1").JobID.String())
	}

	// MaxPixels pixels of MaxStopIDs distinct ids: refused whole.
	var pixels []string
	for p := range pixel.MaxPixels {
		ids := []string{fmt.Sprintf("%q", jobs[0])}
		for i := 1; i < pixel.MaxStopIDs; i++ {
			ids = append(ids, fmt.Sprintf(`"00000000-0000-7000-%04d-%012d"`, p, i))
		}
		pixels = append(pixels, "StopPixelExecution(id=["+strings.Join(ids, ",")+"])")
	}
	status, body := runPixel(strings.Join(pixels, ";"))
	if status != http.StatusBadRequest || !strings.Contains(string(body), "distinct job ids one request stops") {
		t.Fatalf("%d pixels of %d ids: %d %.300s, want 400", pixel.MaxPixels, pixel.MaxStopIDs, status, body)
	}
	if n := events(); n != 0 {
		t.Fatalf("a refused request wrote %d cancel_requested events", n)
	}

	// MaxPixels pixels repeating the tenant's jobs (in upper case every
	// other time): one cancel, one audit row, per job.
	pixels = pixels[:0]
	for p := range pixel.MaxPixels {
		ids := make([]string, len(jobs))
		for i, j := range jobs {
			if p%2 == 1 {
				j = strings.ToUpper(j)
			}
			ids[i] = fmt.Sprintf("%q", j)
		}
		pixels = append(pixels, "StopPixelExecution(id=["+strings.Join(ids, ",")+"])")
	}
	status, body = runPixel(strings.Join(pixels, ";"))
	var out struct {
		PixelReturn []struct {
			Output []string `json:"output"`
		} `json:"pixelReturn"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &out) != nil || len(out.PixelReturn) != pixel.MaxPixels {
		t.Fatalf("repeated ids: %d %.300s", status, body)
	}
	for _, e := range out.PixelReturn {
		if len(e.Output) != len(jobs) || !strings.HasPrefix(e.Output[0], "Cancel requested for pixel job ") {
			t.Fatalf("repeated ids: entry %v, want a cancel message per id", e.Output)
		}
	}
	if n := events(); n != len(jobs) {
		t.Fatalf("%d pixels naming %d jobs wrote %d cancel_requested events, want %d", pixel.MaxPixels, len(jobs), n, len(jobs))
	}
}
