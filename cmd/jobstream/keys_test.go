package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/testserver"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	// An empty database: keys create migrates it, so keys can be made
	// before the first serve.
	env := map[string]string{"DATABASE_URL": testserver.EmptyDatabase(t)}

	res := runCmd(t, env, "keys", "create", "--name", "alice", "--json")
	if res.err != nil {
		t.Fatalf("keys create --json: %v\n%s", res.err, res.stderr)
	}
	var alice struct {
		Access string `json:"access_key"`
		Secret string `json:"secret_key"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &alice); err != nil || !strings.HasPrefix(alice.Access, "ak_") || !strings.HasPrefix(alice.Secret, "sk_") {
		t.Fatalf("keys create --json printed %q (%v)", res.stdout, err)
	}

	res = runCmd(t, env, "keys", "create", "--name", "bob", "--tenant", "team")
	if res.err != nil || !strings.Contains(res.stdout, "access key: ak_") || !strings.Contains(res.stdout, "secret key: sk_") {
		t.Fatalf("keys create: %v\n%s%s", res.err, res.stdout, res.stderr)
	}

	res = runCmd(t, env, "keys", "list", "--json")
	var keys []keyInfo
	if res.err != nil || json.Unmarshal([]byte(res.stdout), &keys) != nil || len(keys) != 2 {
		t.Fatalf("keys list --json: %v\n%s", res.err, res.stdout)
	}
	if keys[0].Name != "alice" || keys[0].AccessKey != alice.Access || keys[0].Tenant != keys[0].ID || keys[1].Tenant != "team" || keys[0].RevokedAt != nil {
		t.Fatalf("keys list: %+v", keys)
	}
	if strings.Contains(res.stdout, alice.Secret) {
		t.Fatal("keys list shows a secret")
	}

	// A queued job of alice's: the revocation cancels it, as the person
	// who ran the command.
	pool := testserver.Pool(t, env["DATABASE_URL"], 1)
	var jobID string
	if err := pool.QueryRow(context.Background(), `
		INSERT INTO jobs (id, tenant, api_key_id, engine, request)
		VALUES (gen_random_uuid(), $1, $2, 'sim', '{"command":"c"}') RETURNING id::text`, keys[0].Tenant, keys[0].ID).Scan(&jobID); err != nil {
		t.Fatal(err)
	}
	if res = runCmd(t, env, "keys", "revoke", alice.Access); res.err != nil || !strings.Contains(res.stdout, "revoked "+alice.Access) ||
		!strings.Contains(res.stdout, "cancelled 1 queued jobs") {
		t.Fatalf("keys revoke: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	var status, actor string
	if err := pool.QueryRow(context.Background(), `
		SELECT j.status, e.actor FROM jobs j JOIN job_events e ON e.job_id = j.id AND e.event = 'cancel_requested'
		WHERE j.id = $1`, jobID).Scan(&status, &actor); err != nil || status != "cancelled" || !strings.HasPrefix(actor, "cli") {
		t.Errorf("alice's queued job: %s, cancel requested by %q (%v); want cancelled by cli:<user>", status, actor, err)
	}
	// Revoking twice says so, and keeps the first time.
	if res = runCmd(t, env, "keys", "revoke", alice.Access); res.err != nil || !strings.Contains(res.stdout, alice.Access+" (alice) was already revoked at ") {
		t.Fatalf("second keys revoke: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	res = runCmd(t, env, "keys", "list")
	if lines := strings.Split(strings.TrimSpace(res.stdout), "\n"); res.err != nil || len(lines) != 3 || strings.Contains(lines[1], " - ") {
		t.Fatalf("keys list after revoke:\n%s", res.stdout)
	}

	for name, args := range map[string][]string{
		"NoSubcommand": {"keys"},
		"Unknown":      {"keys", "rotate"},
		"NoName":       {"keys", "create"},
		"RevokeNoArg":  {"keys", "revoke"},
	} {
		var ue usageError
		if res := runCmd(t, env, args...); !errors.As(res.err, &ue) {
			t.Errorf("%s: err %v, want a usage error", name, res.err)
		}
	}
	if res := runCmd(t, env, "keys", "revoke", "ak_nope"); res.err == nil || !strings.Contains(res.err.Error(), "no key") {
		t.Errorf("revoke unknown: %v", res.err)
	}
}
