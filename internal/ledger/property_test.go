package ledger_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/store"
)

// TestLogProperty runs random sequences of jobs (new and long expired),
// holds placed and lifted, erasures (refused under a hold or twice) and
// retention passes, with checkpoints along the way. Every checkpoint is
// consistent with every earlier one, every live job's inclusion proof
// checks against the latest, and the audit passes, reporting every live
// erased job.
func TestLogProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	b := setup(t)
	days := 30
	if _, err := b.st.RetentionSettingsSet(b.ctx, &days, nil); err != nil {
		t.Fatal(err)
	}
	var (
		live   []uuid.UUID
		held   = map[uuid.UUID]bool{}
		erased = map[uuid.UUID]bool{}
		cps    []ledger.Checkpoint
	)
	for range 40 {
		switch op := r.IntN(11); {
		case op < 4:
			live = append(live, b.job(t, "acme", r.IntN(3)))
		case op < 6:
			live = append(live, b.jobAt(t, "beta", time.Now().AddDate(0, 0, -31-r.IntN(20)), 1))
		case op < 7 && len(live) > 0:
			id := live[r.IntN(len(live))]
			if held[id] {
				if _, err := b.st.HoldLiftOperator(b.ctx, id, "legal@example"); err != nil {
					t.Fatal(err)
				}
			} else if _, err := b.st.HoldPlaceOperator(b.ctx, id, "case", "legal@example"); err != nil {
				t.Fatal(err)
			}
			held[id] = !held[id]
		case op < 8:
			gone, err := b.st.RetentionDeleteBatch(b.ctx, 100, "test")
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range gone {
				if held[g.ID] {
					t.Fatalf("retention deleted held job %s", g.ID)
				}
				for i, id := range live {
					if id == g.ID {
						live = append(live[:i], live[i+1:]...)
						break
					}
				}
			}
		case op < 9 && len(live) > 0:
			id := live[r.IntN(len(live))]
			_, err := b.st.Erase(b.ctx, id, "GDPR", "dpo@example")
			switch {
			case held[id] || erased[id]:
				if !errors.Is(err, store.ErrNotErasable) {
					t.Fatalf("erase of job %s (held %v, erased %v): %v", id, held[id], erased[id], err)
				}
			case err != nil:
				t.Fatal(err)
			default:
				erased[id] = true
			}
		default:
			if cp := b.step(t); cp != nil {
				c, err := ledger.OpenCheckpoint(cp, b.verifier)
				if err != nil {
					t.Fatal(err)
				}
				cps = append(cps, c)
			}
		}
	}
	if cp := b.step(t); cp != nil {
		c, _ := ledger.OpenCheckpoint(cp, b.verifier)
		cps = append(cps, c)
	}
	if len(cps) == 0 {
		t.Fatal("no checkpoint")
	}
	for i, newer := range cps {
		for _, older := range cps[:i] {
			p, err := ledger.Consistency(b.ctx, b.st, older.Size, newer.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(p, newer.Size, newer.Root, older.Size, older.Root); err != nil {
				t.Fatalf("checkpoint %d not consistent with %d: %v", newer.Size, older.Size, err)
			}
		}
	}
	last := cps[len(cps)-1]
	for _, id := range live {
		l, err := b.st.LogJobLeaf(b.ctx, "", id)
		if err != nil {
			t.Fatalf("job %s: %v", id, err)
		}
		p, err := ledger.Inclusion(b.ctx, b.st, l.Index, last.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, last.Size, last.Root, l.Index, tlog.RecordHash(l.Leaf)); err != nil {
			t.Fatalf("inclusion of job %s: %v", id, err)
		}
	}
	rep := b.audit(t, ledgerNote(t, b), nil)
	if !rep.OK() {
		t.Fatalf("audit: %v", rep.Findings)
	}
	liveErased := 0
	for _, id := range live {
		if erased[id] {
			liveErased++
		}
	}
	if len(rep.Erasures) != liveErased {
		t.Fatalf("audit reports %d erasures, want %d: %v", len(rep.Erasures), liveErased, rep.Erasures)
	}
}

func ledgerNote(t *testing.T, b *bundle) []byte {
	t.Helper()
	cp, err := b.st.LogLatestCheckpoint(b.ctx)
	if err != nil || cp == nil {
		t.Fatalf("latest checkpoint: %v", err)
	}
	return []byte(cp.Note)
}
