package main

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestRetentionCommands: retention run --dry-run removes nothing and says
// what would go; retention run removes the expired job and keeps the held
// one; --now only previews; hold, unhold, the policy and the server-wide
// settings commands work, and out-of-range days are refused.
func TestRetentionCommands(t *testing.T) {
	t.Parallel()
	url := dbtest.Isolated(t)
	env := map[string]string{"DATABASE_URL": url}
	pool := testserver.Pool(t, url, 2)
	ctx := context.Background()
	// Two finished jobs of two years ago (in the DEFAULT partition), one
	// with chunks.
	var expired, held string
	for _, p := range []*string{&expired, &held} {
		if err := pool.QueryRow(ctx, `
			INSERT INTO jobs (id, tenant, engine, request, status, created_at, finished_at)
			SELECT overlay(gen_random_uuid()::text placing substr(jobstream_uuid_at(t)::text, 1, 13) from 1)::uuid,
			       'acme', 'sim', '{}', 'completed', t, t
			FROM (SELECT now() - interval '2 years' AS t) s RETURNING id`).Scan(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := dbtest.InsertChunks(ctx, pool, uuid.MustParse(expired), dbtest.ContentChunks(1)); err != nil {
		t.Fatal(err)
	}

	if res := runCmd(t, env, "hold", held, "--reason", "case 7"); res.err != nil || !strings.Contains(res.stdout, "held "+held) {
		t.Fatalf("hold: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "hold"); res.err != nil || !strings.Contains(res.stdout, held) || !strings.Contains(res.stdout, "case 7") {
		t.Fatalf("hold (list): %v\n%s", res.err, res.stdout)
	}

	// The server-wide default lives in the database.
	if res := runCmd(t, env, "retention", "set", "--default", "--days", "30"); res.err != nil || !strings.Contains(res.stdout, "server default: 30 days") {
		t.Fatalf("retention set --default: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	res := runCmd(t, env, "retention", "run", "--dry-run", "--now", "2100-01-01")
	if res.err != nil || !strings.Contains(res.stdout, "would delete job "+expired+" (tenant acme): 1 chunks") || strings.Contains(res.stdout, held) {
		t.Fatalf("dry run: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	var jobs int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&jobs); err != nil || jobs != 2 {
		t.Fatalf("after the dry run: %d jobs (%v), want 2", jobs, err)
	}

	// A pass that deletes judges by the database's clock, never a chosen one.
	if res := runCmd(t, env, "retention", "run", "--now", "2100-01-01T00:00:00Z"); res.err == nil || !strings.Contains(res.err.Error(), "--dry-run only") {
		t.Fatalf("retention run --now without --dry-run: %v\n%s", res.err, res.stdout)
	}
	res = runCmd(t, env, "retention", "run")
	if res.err != nil || !strings.Contains(res.stdout, "deleted job "+expired) || !strings.Contains(res.stdout, "removed 1 jobs and 1 chunks") {
		t.Fatalf("retention run: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	var left string
	if err := pool.QueryRow(ctx, `SELECT string_agg(id::text, ',') FROM jobs`).Scan(&left); err != nil || left != held {
		t.Fatalf("jobs left: %q (%v), want only the held %s", left, err, held)
	}

	if res := runCmd(t, env, "unhold", held); res.err != nil || !strings.Contains(res.stdout, "unheld "+held) {
		t.Fatalf("unhold: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "unhold", held); res.err == nil || !strings.Contains(res.err.Error(), "not held") {
		t.Fatalf("second unhold: %v", res.err)
	}
	// A policy of its own (0: forever) beats the default.
	if res := runCmd(t, env, "retention", "set", "--tenant", "acme", "--days", "0"); res.err != nil || !strings.Contains(res.stdout, "acme: forever") {
		t.Fatalf("retention set: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "retention", "run"); res.err != nil || !strings.Contains(res.stdout, "removed 0 jobs") {
		t.Fatalf("run with a keep-forever policy: %v\n%s", res.err, res.stdout)
	}
	if res := runCmd(t, env, "retention", "list"); res.err != nil || !strings.Contains(res.stdout, "acme") {
		t.Fatalf("retention list: %v\n%s", res.err, res.stdout)
	}
	if res := runCmd(t, env, "retention", "clear", "--tenant", "acme"); res.err != nil {
		t.Fatalf("retention clear: %v", res.err)
	}
	if res := runCmd(t, env, "retention", "run"); res.err != nil || !strings.Contains(res.stdout, "deleted job "+held) {
		t.Fatalf("run after clear: %v\n%s", res.err, res.stdout)
	}
	if res := runCmd(t, env, "retention", "run", "--dry-run", "--now", "tomorrow"); res.err == nil || !strings.Contains(res.err.Error(), "--now") {
		t.Fatalf("bad --now: %v", res.err)
	}
	// Days that would wrap an int32 or overflow a timestamp are refused,
	// not stored as something else (issue 18, item 9).
	for _, days := range []string{"4294967297", "3000000", "-1"} {
		if res := runCmd(t, env, "retention", "set", "--tenant", "acme", "--days", days); res.err == nil {
			t.Errorf("retention set --days %s: accepted\n%s", days, res.stdout)
		}
	}
	// The minimum refuses a policy below it, and is refused above one.
	if res := runCmd(t, env, "retention", "set", "--minimum", "--days", "180"); res.err != nil || !strings.Contains(res.stdout, "minimum: 180 days") {
		t.Fatalf("retention set --minimum: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "retention", "set", "--tenant", "acme", "--days", "30"); res.err == nil || !strings.Contains(res.err.Error(), "below the server-wide minimum") {
		t.Fatalf("a policy below the minimum: %v", res.err)
	}
	if res := runCmd(t, env, "retention", "list"); res.err != nil || !strings.Contains(res.stdout, "server default: 30 days; minimum: 180 days") {
		t.Fatalf("retention list: %v\n%s", res.err, res.stdout)
	}
}
