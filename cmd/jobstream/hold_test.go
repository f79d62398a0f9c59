package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestHoldOperatorVersusTenantKey is the auditor's scenario end to end: the
// legal department holds a tenant's job with jobstream hold; the tenant's
// own key, through a real server (working as the server's database role),
// cannot lift it (403 naming who placed it), the hold stays and a
// retention pass keeps the job. Once an operator lifts it, the tenant
// holds and lifts its own holds. jobstream hold records the person
// (--actor, else user@host), and every step is in the audit trail.
func TestHoldOperatorVersusTenantKey(t *testing.T) {
	t.Parallel()
	dbURL := testserver.Database(t)
	base, _ := serveOn(t, dbURL) // no --dev: keys required
	env := map[string]string{"DATABASE_URL": dbURL}
	pool := testserver.Pool(t, dbURL, 2)
	ctx := context.Background()

	res := runCmd(t, env, "keys", "create", "--name", "acme-app", "--tenant", "acme", "--json")
	var key struct {
		Access string `json:"access_key"`
		Secret string `json:"secret_key"`
	}
	if res.err != nil || json.Unmarshal([]byte(res.stdout), &key) != nil {
		t.Fatalf("keys create: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	// A finished job of two years ago: any policy but forever removes it.
	var id string
	if err := pool.QueryRow(ctx, `
		INSERT INTO jobs (id, tenant, engine, request, status, created_at, finished_at)
		SELECT overlay(gen_random_uuid()::text placing substr(jobstream_uuid_at(t)::text, 1, 13) from 1)::uuid,
		       'acme', 'sim', '{}', 'completed', t, t
		FROM (SELECT now() - interval '2 years' AS t) s RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if err := dbtest.InsertChunks(ctx, pool, uuid.MustParse(id), dbtest.ContentChunks(2)); err != nil {
		t.Fatal(err)
	}
	api := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(key.Access, key.Secret)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	holdPath := "/v1/jobs/" + id + "/hold"
	jobs := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if res := runCmd(t, env, "hold", id, "--reason", "case 9", "--actor", "jane@legal"); res.err != nil || !strings.Contains(res.stdout, "by jane@legal (operator authority)") {
		t.Fatalf("hold: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	status, body := api(http.MethodDelete, holdPath, "")
	if status != http.StatusForbidden || !strings.Contains(body, `"code":"operator_hold"`) ||
		!strings.Contains(body, "held by an operator (legal hold placed by jane@legal); only an operator can lift it") {
		t.Fatalf("tenant DELETE of the operator's hold = %d %s, want 403 naming jane@legal", status, body)
	}
	if status, body = api(http.MethodPost, holdPath, `{"reason":"ours"}`); status != http.StatusOK || !strings.Contains(body, `"authority":"operator"`) || !strings.Contains(body, `"held_by":"jane@legal"`) {
		t.Fatalf("tenant POST on the operator's hold = %d %s", status, body)
	}
	if res := runCmd(t, env, "retention", "set", "--default", "--days", "30"); res.err != nil {
		t.Fatal(res.err)
	}
	if res := runCmd(t, env, "retention", "run", "--dry-run", "--now", "2100-01-01"); res.err != nil || !strings.Contains(res.stdout, "would remove 0 jobs") || jobs() != 1 {
		t.Fatalf("retention run with the operator's hold: %v\n%s", res.err, res.stdout)
	}
	if res := runCmd(t, env, "hold"); res.err != nil || !strings.Contains(res.stdout, "AUTHORITY") || !lineHas(res.stdout, id, "operator", "jane@legal", "case 9") {
		t.Fatalf("hold (list): %v\n%s", res.err, res.stdout)
	}

	if res := runCmd(t, env, "unhold", id, "--actor", "bob@legal"); res.err != nil || !strings.Contains(res.stdout, "unheld "+id) {
		t.Fatalf("unhold: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	// The tenant's own hold: placed and lifted with its key.
	if status, body = api(http.MethodPost, holdPath, `{"reason":"ours"}`); status != http.StatusOK || !strings.Contains(body, `"authority":"tenant"`) {
		t.Fatalf("tenant POST = %d %s", status, body)
	}
	if status, body = api(http.MethodDelete, holdPath, ""); status != http.StatusOK || !strings.Contains(body, `"held":false`) {
		t.Fatalf("tenant DELETE of its own hold = %d %s", status, body)
	}
	// Without --actor, the person is the OS user at this host.
	if res := runCmd(t, env, "hold", id); res.err != nil || !strings.Contains(res.stdout, "by "+defaultActor(t)+" (operator authority)") {
		t.Fatalf("hold without --actor: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "unhold", id); res.err != nil {
		t.Fatalf("unhold without --actor: %v", res.err)
	}

	status, body = api(http.MethodGet, "/v1/jobs/"+id+"/audit", "")
	var audit struct {
		Events []struct {
			Event, Actor string
			Reason       *string
			Detail       struct{ Authority string }
		}
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &audit) != nil {
		t.Fatalf("audit = %d %s", status, body)
	}
	var got []string
	for _, e := range audit.Events {
		if strings.HasPrefix(e.Event, "hold_") {
			got = append(got, fmt.Sprintf("%s by %s (%s)", e.Event, strings.SplitN(e.Actor, ":", 2)[0], e.Detail.Authority))
		}
	}
	want := []string{
		"hold_placed by jane@legal (operator)", "hold_lifted by bob@legal (operator)",
		"hold_placed by api_key (tenant)", "hold_lifted by api_key (tenant)",
		"hold_placed by " + defaultActor(t) + " (operator)", "hold_lifted by " + defaultActor(t) + " (operator)",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hold events:\n%v\nwant\n%v", got, want)
	}

	if res := runCmd(t, env, "retention", "run", "--dry-run", "--now", "2100-01-01"); res.err != nil || !strings.Contains(res.stdout, "would delete job "+id) || jobs() != 1 {
		t.Fatalf("retention run after the holds: %v\n%s", res.err, res.stdout)
	}
	for name, args := range map[string][]string{
		"NULReason": {"hold", id, "--reason", "a\x00b"},
		"NULActor":  {"unhold", id, "--actor", "a\x00b"},
	} {
		if res := runCmd(t, env, args...); res.err == nil || !strings.Contains(res.err.Error(), "NUL") {
			t.Errorf("%s: %v, want a usage error naming the NUL", name, res.err)
		}
	}
}

// defaultActor is what jobstream hold records without --actor.
func defaultActor(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Skipf("no current user: %v", err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name: %v", err)
	}
	return u.Username + "@" + host
}

// lineHas reports whether some line of out holds every field, in order.
func lineHas(out string, fields ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		rest, ok := line, true
		for _, f := range fields {
			i := strings.Index(rest, f)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(f):]
		}
		if ok {
			return true
		}
	}
	return false
}
