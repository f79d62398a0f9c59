package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/store"
)

// AuditConfig is what an auditor brings: the log's verifier key and
// checkpoints kept outside the database.
type AuditConfig struct {
	VerifierKey string
	// Checkpoint is the signed checkpoint to check the database against.
	Checkpoint []byte
	// Previous, if set, is an earlier checkpoint the auditor kept: the log
	// must extend it.
	Previous []byte
	// Delay is the sequencing delay: every job that ended longer ago must
	// have a leaf.
	Delay time.Duration
}

// Finding is one thing wrong, about a job (JobID) or the log as a whole.
type Finding struct {
	JobID  *uuid.UUID
	Reason string
}

func (f Finding) String() string {
	if f.JobID != nil {
		return fmt.Sprintf("%s BAD: %s", f.JobID, f.Reason)
	}
	return "LOG BAD: " + f.Reason
}

// AuditReport is an audit's verdict.
type AuditReport struct {
	Checkpoint Checkpoint
	// Leaves is the log's size in the database (at least the checkpoint's).
	Leaves int64
	// Jobs logged and checked against their row; Deleted jobs whose
	// removal a later leaf justifies; Held jobs under a hold at the end of
	// the log; Unsigned leaves past the checkpoint, checked the same way
	// but not yet covered by a signature.
	Jobs, Deleted, Held int
	Unsigned            int64
	// Erasures are the jobs (among Jobs) whose content was erased, with
	// verify's reason: by whom, when and why. Not findings: an erasure a
	// later erased leaf records is legitimate.
	Erasures []Finding
	Findings []Finding
}

// OK reports whether nothing was found wrong.
func (r *AuditReport) OK() bool { return len(r.Findings) == 0 }

func (r *AuditReport) job(id uuid.UUID, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{JobID: &id, Reason: fmt.Sprintf(format, args...)})
}

func (r *AuditReport) log(format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Reason: fmt.Sprintf(format, args...)})
}

// memHashes is a tree's stored hashes in memory, by stored hash index.
type memHashes []tlog.Hash

func (m *memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(*m)) {
			return nil, fmt.Errorf("hash %d not computed", x)
		}
		out[i] = (*m)[x]
	}
	return out, nil
}

// Audit checks the database against a checkpoint held outside it. It
// trusts nothing the database says about the tree: it rebuilds the tree
// from the leaves themselves, then checks the checkpoint's signature and
// root, the previous checkpoint's consistency, every job leaf against the
// job's row, chain and seal (internal/chain, by store.Verify), every job
// gone against a later deleted leaf that justifies its removal, and that
// every job ended before the sequencing delay has a leaf. An error is an
// audit that could not run; what it found is in the report.
func Audit(ctx context.Context, st *store.Store, cfg AuditConfig) (*AuditReport, error) {
	rep := &AuditReport{}
	c, err := OpenCheckpoint(cfg.Checkpoint, cfg.VerifierKey)
	if err != nil {
		rep.log("%v", err)
		return rep, nil
	}
	rep.Checkpoint = c
	var prev *Checkpoint
	if cfg.Previous != nil {
		p, err := OpenCheckpoint(cfg.Previous, cfg.VerifierKey)
		if err != nil {
			rep.log("previous %v", err)
			return rep, nil
		}
		prev = &p
	}
	started := time.Now()

	// Every leaf, in index order, and the tree over them.
	var (
		leaves []store.LogLeaf
		tree   memHashes
	)
	for {
		page, err := st.LogLeavesFrom(ctx, int64(len(leaves)), 10000)
		if err != nil {
			return nil, err
		}
		for _, l := range page {
			n := int64(len(leaves))
			if l.Index != n {
				rep.log("leaf %d follows leaf %d: the log has a gap", l.Index, n-1)
				return rep, nil
			}
			hs, err := tlog.StoredHashes(n, l.Leaf, &tree)
			if err != nil {
				return nil, fmt.Errorf("hash leaf %d: %w", n, err)
			}
			tree = append(tree, hs...)
			leaves = append(leaves, l)
		}
		if len(page) < 10000 {
			break
		}
	}
	rep.Leaves = int64(len(leaves))
	if rep.Leaves < c.Size {
		rep.log("the database's log has %d leaves, the checkpoint %d: leaves were removed", rep.Leaves, c.Size)
		return rep, nil
	}
	root, err := tlog.TreeHash(c.Size, &tree)
	if err != nil {
		return nil, fmt.Errorf("tree hash: %w", err)
	}
	if root != c.Root {
		rep.log("the database's first %d leaves do not hash to the checkpoint's root: the log was rewritten", c.Size)
		return rep, nil
	}
	if prev != nil {
		switch {
		case prev.Size > c.Size:
			rep.log("the previous checkpoint (size %d) is larger than the checkpoint (size %d)", prev.Size, c.Size)
		case prev.Size > 0:
			proof, err := tlog.ProveTree(c.Size, prev.Size, &tree)
			if err == nil {
				err = tlog.CheckTree(proof, c.Size, c.Root, prev.Size, prev.Root)
			}
			if err != nil {
				rep.log("the checkpoint of size %d is not consistent with the previous checkpoint of size %d: the log was rewritten (%v)", c.Size, prev.Size, err)
				return rep, nil
			}
		}
	}
	rep.Unsigned = rep.Leaves - c.Size

	// What the leaves say about each job.
	type jobLog struct {
		leaf    *Job
		index   int64
		deleted *Deleted
		delIdx  int64
		held    bool // an operator or tenant hold open at the end of the log
		heldDel bool // a hold was open when the deleted leaf was appended
		erased  *Erased
		eraIdx  int64
		heldEra bool // a hold was open when the erased leaf was appended
	}
	jobs := map[uuid.UUID]*jobLog{}
	get := func(id uuid.UUID) *jobLog {
		j := jobs[id]
		if j == nil {
			j = &jobLog{}
			jobs[id] = j
		}
		return j
	}
	for _, l := range leaves {
		v, err := Decode(l.Leaf)
		if err != nil {
			rep.log("leaf %d: %v", l.Index, err)
			continue
		}
		switch x := v.(type) {
		case *Job:
			j := get(x.ID)
			if j.leaf != nil {
				rep.job(x.ID, "logged twice (leaves %d and %d)", j.index, l.Index)
			}
			j.leaf, j.index = x, l.Index
		case *Deleted:
			j := get(x.ID)
			j.deleted, j.delIdx, j.heldDel = x, l.Index, j.held
		case *Erased:
			j := get(x.ID)
			j.erased, j.eraIdx, j.heldEra = x, l.Index, j.held
		case *Hold:
			get(x.ID).held = !x.Lifted
		}
	}

	ids := make([]uuid.UUID, 0, len(jobs))
	for id := range jobs {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		j := jobs[id]
		if j.held {
			rep.Held++
		}
		if j.leaf == nil {
			if j.deleted != nil {
				rep.job(id, "deleted (leaf %d) but never logged", j.delIdx)
			}
			if j.erased != nil {
				rep.job(id, "erased (leaf %d) but never logged", j.eraIdx)
			}
			continue
		}
		row, err := st.LogJobRow(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			switch {
			case j.deleted == nil:
				rep.job(id, "gone, and no leaf after its leaf %d says it was deleted", j.index)
			case j.delIdx < j.index:
				rep.job(id, "its deleted leaf %d comes before its job leaf %d", j.delIdx, j.index)
			default:
				if reason := justify(j.leaf, j.deleted, j.heldDel); reason != "" {
					rep.job(id, "deleted (leaf %d) %s", j.delIdx, reason)
				} else {
					rep.Deleted++
				}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if j.deleted != nil {
			// A dropped partition takes the chunks at once and leaves the
			// rows to the same pass's next step (00040): between the two
			// the job is being removed, and its chain cannot verify.
			if strings.HasPrefix(j.deleted.Reason, "partition ") {
				if reason := justify(j.leaf, j.deleted, j.heldDel); reason != "" {
					rep.job(id, "its chunks were dropped (leaf %d) %s", j.delIdx, reason)
				} else {
					rep.Deleted++
				}
				continue
			}
			rep.job(id, "still present, yet leaf %d says it was deleted", j.delIdx)
		}
		rep.Jobs++
		for _, reason := range compare(j.leaf, row) {
			rep.job(id, "%s (leaf %d)", reason, j.index)
		}
		if j.erased != nil || row.ErasedAt != nil {
			reasons, err := checkErasure(ctx, st, j.leaf, j.index, j.erased, j.eraIdx, j.heldEra, row)
			if err != nil {
				return nil, err
			}
			for _, reason := range reasons {
				rep.job(id, "%s", reason)
			}
		}
		res, err := st.Verify(ctx, "", id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil && !res.OK {
			rep.job(id, "its chain is broken: %s", res.Reason)
		}
		if err == nil && res.OK && row.ErasedAt != nil {
			rep.Erasures = append(rep.Erasures, Finding{JobID: &id, Reason: res.Reason})
		}
		if j.leaf.EventCount > 0 {
			h, err := st.LogJobEventHash(ctx, id, j.leaf.EventCount-1)
			switch {
			case errors.Is(err, store.ErrNotFound):
				rep.job(id, "its audit trail lost event %d, which its leaf covers", j.leaf.EventCount-1)
			case err != nil:
				return nil, err
			case !bytes.Equal(h, j.leaf.EventTip):
				rep.job(id, "its audit trail up to event %d is not the one logged", j.leaf.EventCount-1)
			}
		}
	}

	// Jobs that ended and were never logged.
	unlogged, err := st.LogSealedUnlogged(ctx, started.Add(-cfg.Delay))
	if err != nil {
		return nil, err
	}
	for _, id := range unlogged {
		rep.job(id, "ended more than %s ago but has no leaf: inserted or ended outside the log", cfg.Delay)
	}
	orphans, err := st.ChunkOrphans(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range orphans {
		rep.job(id, "has chunks but no job row")
	}
	return rep, nil
}

// compare lists how a job's row differs from its leaf. An erased job's
// request is gone: its stored hash stands for it (checkErasure and verify
// hold that hash to the seed, the erased leaf and the chain).
func compare(l *Job, row store.LogJob) []string {
	var out []string
	rh := sha256.Sum256(row.Request)
	got := rh[:]
	if row.ErasedAt != nil {
		got = row.RequestSHA256
	}
	if !bytes.Equal(got, l.RequestSHA256) {
		out = append(out, "its request is not the one logged")
	}
	if row.Tenant != l.Tenant || row.Engine != l.Engine {
		out = append(out, "its tenant or engine is not the one logged")
	}
	if int64(row.ChainVersion) != l.ChainVersion {
		out = append(out, "its chain version is not the one logged")
	}
	if row.Status != l.Status {
		out = append(out, fmt.Sprintf("its status is %s, logged %s", row.Status, l.Status))
	}
	if !eqInt(row.ChunkCount, l.ChunkCount) || !bytes.Equal(row.FinalHash, l.FinalHash) {
		out = append(out, "its seal (chunk count, final hash) is not the one logged: its chunks were rewritten")
	}
	if !row.CreatedAt.Equal(l.CreatedAt) || !eqTime(row.FinishedAt, l.FinishedAt) {
		out = append(out, "its creation or end time is not the one logged")
	}
	return out
}

// checkErasure lists what is wrong with a job's erasure, none when its
// erased leaf (e, at index ei) justifies it: the leaf follows the job's
// leaf, no hold was open, it kept the request hash and the seal logged,
// the row says the job was erased, and the job's stored chunk hashes are
// still the ones the leaf kept (the data is gone, so a hash changed after
// the erasure is caught here, even with the chain and event trail
// recomputed).
func checkErasure(ctx context.Context, st *store.Store, l *Job, li int64, e *Erased, ei int64, held bool, row store.LogJob) ([]string, error) {
	if e == nil {
		return []string{fmt.Sprintf("marked erased, but no erased leaf follows its leaf %d", li)}, nil
	}
	var out []string
	switch {
	case ei < li:
		out = append(out, fmt.Sprintf("its erased leaf %d comes before its job leaf %d", ei, li))
	case held:
		out = append(out, fmt.Sprintf("erased (leaf %d) while a hold was open", ei))
	case !bytes.Equal(e.RequestSHA256, l.RequestSHA256) || l.ChunkCount == nil || e.ChunkCount != *l.ChunkCount || !bytes.Equal(e.FinalHash, l.FinalHash):
		out = append(out, fmt.Sprintf("erased (leaf %d) with a request hash or seal that is not the one logged", ei))
	}
	if row.ErasedAt == nil {
		out = append(out, fmt.Sprintf("leaf %d says it was erased, but its row is not", ei))
	}
	sum, err := st.LogChunkHashesSHA256(ctx, row.ID)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(sum, e.ChunkHashes) {
		out = append(out, fmt.Sprintf("its chunk hashes are not the ones kept when it was erased (leaf %d)", ei))
	}
	return out, nil
}

// justify says what is wrong with a deletion, "" when its leaf justifies
// it: the seal removed is the one logged, the rule judged by kept the job
// its days, and no hold was open.
func justify(l *Job, d *Deleted, held bool) string {
	switch {
	case held:
		return "while a hold was open"
	case !eqInt(d.ChunkCount, l.ChunkCount) || !bytes.Equal(d.FinalHash, l.FinalHash):
		return "with a seal that is not the one logged"
	case d.KeepDays <= 0:
		return "under a rule that keeps jobs forever"
	case d.JudgedAt.Before(l.CreatedAt.AddDate(0, 0, int(max(d.KeepDays, d.MinDays)))):
		return fmt.Sprintf("before its %d days had passed", max(d.KeepDays, d.MinDays))
	}
	return ""
}

func eqInt(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
func eqTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}
