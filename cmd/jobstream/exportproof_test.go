package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"

	"github.com/jobstream/jobstream/internal/export/exporttest"
	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestExportProofs (issue 20, item 4 and 5): with a signed checkpoint,
// `jobstream export` starts with it and carries each job's leaf and
// inclusion proof; `verify --export F --verifier-key K` proves every
// logged job offline and reports the rest as not yet logged. Tampering
// with an embedded leaf, or with a job line field the leaf covers,
// fails naming the job; a forged checkpoint or the wrong key fails the
// signature. Without the key, the Go checker and the README's Python
// checker still print the same report on the new format.
func TestExportProofs(t *testing.T) {
	t.Parallel()
	url := testserver.Database(t)
	pool := testserver.Pool(t, url, 2)
	st := store.New(pool)
	ctx := context.Background()
	env := map[string]string{"DATABASE_URL": url}
	dir := t.TempDir()
	tenant := "t-" + uuid.NewString()

	skey, vkey, err := ledger.GenerateKey("test.example/jobstream")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	finish := func() uuid.UUID {
		l := testserver.RunningJob(t, pool, tenant, "w1")
		chunks := []store.NewChunk{testserver.Content(l, 0, "a"), testserver.FinishChunk(l, 1, "stop")}
		if _, err := st.WriteBatch(ctx, "w1", chunks, []store.Finish{{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}}); err != nil {
			t.Fatal(err)
		}
		return l.JobID
	}
	step := func(cfg ledger.Config) {
		seq := ledger.NewSequencer(st, cfg)
		for {
			s, err := seq.Step(ctx)
			if err != nil || !s.Locked {
				t.Fatalf("sequencer step: %+v %v", s, err)
			}
			if !s.More {
				return
			}
		}
	}

	// No checkpoint yet: no checkpoint line, said on stderr; --verifier-key
	// refuses such an export, and without it the export still verifies.
	early := finish()
	bare := filepath.Join(dir, "bare.jsonl")
	if res := runCmd(t, env, "export", "--tenant", tenant, "--out", bare); res.err != nil || !strings.Contains(res.stderr, "no signed checkpoint") {
		t.Fatalf("export without a checkpoint: %v\n%s", res.err, res.stderr)
	}
	if b, _ := os.ReadFile(bare); strings.Contains(string(b), `"type":"checkpoint"`) || strings.Contains(string(b), `"leaf"`) {
		t.Fatalf("an export without a checkpoint carries proofs:\n%s", b)
	}
	if res := runCmd(t, env, "verify", "--export", bare); res.err != nil {
		t.Fatalf("verify --export of an export without proofs: %v\n%s", res.err, res.stdout)
	}
	if res := runCmd(t, env, "verify", "--export", bare, "--verifier-key", vkey); !errors.Is(res.err, errSilent) || !strings.Contains(res.stdout, "checkpoint BAD: the export holds no checkpoint line") {
		t.Fatalf("verify --verifier-key of an export without a checkpoint: %v\n%s", res.err, res.stdout)
	}

	// Two jobs in a signed checkpoint; a third logged after it (a
	// sequencer without the key numbers it, signs nothing); a fourth not
	// logged at all.
	second := finish()
	step(ledger.Config{Signer: signer, CheckpointInterval: 1})
	after := finish()
	step(ledger.Config{})
	unlogged := finish()

	file := filepath.Join(dir, "jobs.jsonl")
	if res := runCmd(t, env, "export", "--tenant", tenant, "--out", file); res.err != nil || res.stderr != "" {
		t.Fatalf("export: %v\n%s", res.err, res.stderr)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if !strings.HasPrefix(lines[0], `{"type":"checkpoint","note":"test.example/jobstream\n2\n`) {
		t.Fatalf("the export does not start with the checkpoint of 2 leaves:\n%s", lines[0])
	}
	res := runCmd(t, env, "verify", "--export", file, "--verifier-key", vkey)
	if res.err != nil || !strings.Contains(res.stdout, "proofs against checkpoint test.example/jobstream of size 2: 2 jobs included, 2 not yet logged, 0 bad") ||
		!strings.Contains(res.stdout, after.String()+" NOT YET LOGGED: its leaf 2 came after the checkpoint's 2 leaves") ||
		!strings.Contains(res.stdout, unlogged.String()+" NOT YET LOGGED: the export carries no leaf for it") {
		t.Fatalf("verify --verifier-key of an honest export: %v\n%s", res.err, res.stdout)
	}
	// A key file works as well as the key.
	keyFile := filepath.Join(dir, "log.pub")
	if err := os.WriteFile(keyFile, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := runCmd(t, env, "verify", "--export", file, "--verifier-key", keyFile); res.err != nil {
		t.Fatalf("verify --verifier-key FILE: %v\n%s", res.err, res.stdout)
	}

	// Without the key: the chain report alone, the Python checker's.
	script := exporttest.PythonChecker(t)
	plain := runCmd(t, env, "verify", "--export", file)
	py, code := exporttest.RunPython(t, script, file, false)
	if plain.err != nil || code != 0 || py != plain.stdout || !strings.Contains(py, "4 jobs verified: 4 intact, 0 broken") {
		t.Fatalf("without the key: jobstream (%v):\n%s\npython3 (exit %d):\n%s", plain.err, plain.stdout, code, py)
	}

	// edit rewrites the job line of job id through fn and writes the
	// result to a new file.
	n := 0
	edit := func(id uuid.UUID, fn func(m map[string]json.RawMessage)) string {
		t.Helper()
		out := make([]string, len(lines))
		copy(out, lines)
		for i, l := range out {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			if string(m["type"]) == `"job"` && string(m["id"]) == `"`+id.String()+`"` {
				fn(m)
				b, err := json.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				out[i] = string(b)
			}
		}
		n++
		p := filepath.Join(dir, "edit"+string(rune('a'+n))+".jsonl")
		if err := os.WriteFile(p, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var leafB64 string
	edit(early, func(m map[string]json.RawMessage) { _ = json.Unmarshal(m["leaf"], &leafB64) })
	leaf, _ := base64.StdEncoding.DecodeString(leafB64)
	v, err := ledger.Decode(leaf)
	if err != nil {
		t.Fatal(err)
	}
	j := *v.(*ledger.Job)
	j.FinalHash = make([]byte, 32)
	forgedLeaf, _ := json.Marshal(base64.StdEncoding.EncodeToString(j.Encode()))
	// A byte the job line does not cover (the event tip's last): only the
	// inclusion proof catches it.
	leaf[len(leaf)-1] ^= 1
	forgedTip, _ := json.Marshal(base64.StdEncoding.EncodeToString(leaf))

	for _, c := range []struct {
		name, want string
		fn         func(m map[string]json.RawMessage)
	}{
		{"leaf", "PROOF BAD: its job line does not match its leaf 0 (final_hash)", func(m map[string]json.RawMessage) { m["leaf"] = forgedLeaf }},
		{"leaf event tip", "PROOF BAD: its leaf 0 is not included in the checkpoint's tree", func(m map[string]json.RawMessage) { m["leaf"] = forgedTip }},
		{"final_hash", "PROOF BAD: its job line does not match its leaf 0 (final_hash)", func(m map[string]json.RawMessage) {
			m["final_hash"] = json.RawMessage(`"` + strings.Repeat("ab", 32) + `"`)
		}},
		{"chunk_count", "PROOF BAD: its job line does not match its leaf 0 (chunk_count)", func(m map[string]json.RawMessage) { m["chunk_count"] = json.RawMessage(`3`) }},
		{"request_sha256", "PROOF BAD: its job line does not match its leaf 0 (request_sha256)", func(m map[string]json.RawMessage) {
			m["request_sha256"] = json.RawMessage(`"` + strings.Repeat("cd", 32) + `"`)
		}},
		{"no proof", "PROOF BAD: the checkpoint covers its leaf 0, but the export has no inclusion proof for it", func(m map[string]json.RawMessage) { delete(m, "inclusion_proof") }},
		{"other index", "PROOF BAD: its leaf 1 is not included in the checkpoint's tree", func(m map[string]json.RawMessage) { m["log_index"] = json.RawMessage(`1`) }},
	} {
		p := edit(early, c.fn)
		res := runCmd(t, env, "verify", "--export", p, "--verifier-key", vkey)
		if !errors.Is(res.err, errSilent) || !strings.Contains(res.stdout, early.String()+" "+c.want) || strings.Contains(res.stdout, second.String()+" PROOF BAD") {
			t.Errorf("%s tampered: %v, want exit 1 and %q\n%s", c.name, res.err, early.String()+" "+c.want, res.stdout)
		}
	}

	// A forged checkpoint: its root replaced.
	var cpLine struct {
		Type, Note string
	}
	if err := json.Unmarshal([]byte(lines[0]), &cpLine); err != nil {
		t.Fatal(err)
	}
	body := strings.SplitN(cpLine.Note, "\n", 4)
	body[2] = base64.StdEncoding.EncodeToString(make([]byte, 32))
	cpLine.Note = strings.Join(body, "\n")
	forgedCP, _ := json.Marshal(map[string]string{"type": "checkpoint", "note": cpLine.Note})
	forged := filepath.Join(dir, "forged.jsonl")
	if err := os.WriteFile(forged, []byte(string(forgedCP)+"\n"+strings.Join(lines[1:], "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := runCmd(t, env, "verify", "--export", forged, "--verifier-key", vkey); !errors.Is(res.err, errSilent) || !strings.Contains(res.stdout, "checkpoint BAD: checkpoint signature") {
		t.Errorf("forged checkpoint: %v\n%s", res.err, res.stdout)
	}
	// Another key of the same name.
	_, other, err := ledger.GenerateKey("test.example/jobstream")
	if err != nil {
		t.Fatal(err)
	}
	if res := runCmd(t, env, "verify", "--export", file, "--verifier-key", other); !errors.Is(res.err, errSilent) || !strings.Contains(res.stdout, "checkpoint BAD: checkpoint signature") {
		t.Errorf("wrong verifier key: %v\n%s", res.err, res.stdout)
	}
	// Two checkpoint lines.
	twice := filepath.Join(dir, "twice.jsonl")
	if err := os.WriteFile(twice, []byte(lines[0]+"\n"+string(raw)), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := runCmd(t, env, "verify", "--export", twice, "--verifier-key", vkey); !errors.Is(res.err, errSilent) || !strings.Contains(res.stdout, "checkpoint BAD: the export holds 2 checkpoint lines (lines 1, 2)") {
		t.Errorf("two checkpoints: %v\n%s", res.err, res.stdout)
	}
	// An erased job keeps its proof: its job line's fields are still its
	// leaf's (the request by its stored hash).
	if res := runCmd(t, env, "erase", second.String(), "--reason", "GDPR"); res.err != nil {
		t.Fatalf("erase: %v\n%s", res.err, res.stderr)
	}
	erasedFile := filepath.Join(dir, "erased.jsonl")
	if res := runCmd(t, env, "export", "--tenant", tenant, "--out", erasedFile); res.err != nil {
		t.Fatalf("export after erasure: %v", res.err)
	}
	if res := runCmd(t, env, "verify", "--export", erasedFile, "--verifier-key", vkey); res.err != nil || !strings.Contains(res.stdout, "2 jobs included") {
		t.Errorf("verify --verifier-key after an erasure: %v\n%s", res.err, res.stdout)
	}
	if res := runCmd(t, env, "verify", "--all", "--verifier-key", vkey); res.err == nil || !strings.Contains(res.err.Error(), "--verifier-key goes with --export") {
		t.Errorf("--verifier-key without --export: %v", res.err)
	}
}
