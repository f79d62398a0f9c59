package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
)

// TestLogRoutes: GET /log/checkpoint and /log/consistency answer without
// credentials and validate their input; GET /v1/jobs/{id}/proof proves the
// key's tenant's job in the latest checkpoint and nobody else's.
func TestLogRoutes(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbtest.Isolated(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool)
	skey, vkey, err := ledger.GenerateKey("test.example/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	seq := ledger.NewSequencer(st, ledger.Config{Signer: signer, CheckpointInterval: time.Nanosecond})
	job := func(tenant string) uuid.UUID {
		id := uuid.Must(uuid.NewV7())
		if _, err := pool.Exec(ctx, `INSERT INTO jobs (id, tenant, engine, request, status, finished_at)
			VALUES ($1, $2, 'sim', '{}', 'cancelled', now())`, id, tenant); err != nil {
			t.Fatal(err)
		}
		return id
	}
	step := func() ledger.Checkpoint {
		s, err := seq.Step(ctx)
		if err != nil || s.Checkpoint == nil {
			t.Fatalf("step %+v %v", s, err)
		}
		c, err := ledger.OpenCheckpoint(s.Checkpoint, vkey)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	srv := httptest.NewServer(server.NewAPI(server.APIDeps{Store: st, Auth: httpapi.DevAuth{}}))
	t.Cleanup(srv.Close)
	get := func(path string, want int) []byte {
		t.Helper()
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("GET %s: %d %s, want %d", path, res.StatusCode, body, want)
		}
		return body
	}

	get("/log/checkpoint", http.StatusNotFound)
	mine := job(httpapi.DevTenant)
	c1 := step()
	theirs := job("other")
	c2 := step()
	if cp := get("/log/checkpoint", http.StatusOK); !strings.HasPrefix(string(cp), "test.example/log\n2\n") {
		t.Fatalf("checkpoint %q", cp)
	}

	var cons ledger.ConsistencyProof
	if err := json.Unmarshal(get("/log/consistency?old=1&new=2", http.StatusOK), &cons); err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(toHashes(cons.Proof), c2.Size, c2.Root, c1.Size, c1.Root); err != nil {
		t.Fatalf("consistency proof: %v", err)
	}
	for q, msg := range map[string]string{
		"":                                "old is required",
		"?old=1":                          "new is required",
		"?old=0&new=2":                    "not a tree size",
		"?old=x&new=2":                    "not a tree size",
		"?old=01&new=2":                   "not a tree size",
		"?old=1&new=-2":                   "not a tree size",
		"?old=2&new=1":                    "larger than new",
		"?old=1&new=3":                    "beyond the latest checkpoint",
		"?old=1&old=1&new=2":              "required once",
		"?old=1&new=2&x=1":                "unknown query parameter",
		"?old=1&new=99999999999999999999": "not a tree size",
	} {
		if body := get("/log/consistency"+q, http.StatusBadRequest); !strings.Contains(string(body), msg) {
			t.Errorf("GET /log/consistency%s: %s, want %q", q, body, msg)
		}
	}

	var p ledger.JobProof
	if err := json.Unmarshal(get("/v1/jobs/"+mine.String()+"/proof", http.StatusOK), &p); err != nil {
		t.Fatal(err)
	}
	c, err := ledger.OpenCheckpoint([]byte(p.Checkpoint), vkey)
	if err != nil || c.Size != p.TreeSize {
		t.Fatalf("proof's checkpoint %+v %v", c, err)
	}
	if err := tlog.CheckRecord(toHashes(p.InclusionProof), c.Size, c.Root, p.LeafIndex, tlog.RecordHash(p.Leaf)); err != nil {
		t.Fatalf("inclusion proof: %v", err)
	}
	if v, err := ledger.Decode(p.Leaf); err != nil || v.(*ledger.Job).ID != mine {
		t.Fatalf("leaf %v %v", v, err)
	}
	get("/v1/jobs/"+theirs.String()+"/proof", http.StatusNotFound)
	unlogged := job(httpapi.DevTenant)
	if body := get("/v1/jobs/"+unlogged.String()+"/proof", http.StatusNotFound); !strings.Contains(string(body), "not_logged") {
		t.Fatalf("unlogged job: %s", body)
	}
	get("/v1/jobs/not-a-uuid/proof", http.StatusBadRequest)
}

func toHashes(b [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(b))
	for i := range b {
		copy(out[i][:], b[i])
	}
	return out
}
