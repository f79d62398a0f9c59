package ledger

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/store"
)

// JobProof is GET /v1/jobs/{id}/proof's answer: a job's leaf, its index,
// its inclusion proof against the latest checkpoint, and that checkpoint.
// Hashes and the leaf are base64 (encoding/json's []byte).
type JobProof struct {
	JobID          string   `json:"job_id"`
	LeafIndex      int64    `json:"leaf_index"`
	Leaf           []byte   `json:"leaf"`
	TreeSize       int64    `json:"tree_size"`
	InclusionProof [][]byte `json:"inclusion_proof"`
	Checkpoint     string   `json:"checkpoint"`
}

// ErrNotLogged is a job whose leaf is not in a signed checkpoint yet.
var ErrNotLogged = errors.New("not in a signed checkpoint yet")

// ProveJob builds a job's proof against the latest checkpoint. tenant ""
// matches any tenant; another tenant's job is store.ErrNotFound.
func ProveJob(ctx context.Context, st *store.Store, tenant string, id [16]byte) (*JobProof, error) {
	l, err := st.LogJobLeaf(ctx, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotLogged
	}
	if err != nil {
		return nil, err
	}
	cp, err := st.LogLatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if cp == nil || l.Index >= cp.TreeSize {
		return nil, ErrNotLogged
	}
	p, err := Inclusion(ctx, st, l.Index, cp.TreeSize)
	if err != nil {
		return nil, err
	}
	return &JobProof{JobID: l.JobID.String(), LeafIndex: l.Index, Leaf: l.Leaf, TreeSize: cp.TreeSize,
		InclusionProof: hashes(p), Checkpoint: cp.Note}, nil
}

func hashes(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// ConsistencyProof is GET /log/consistency's answer.
type ConsistencyProof struct {
	Old   int64    `json:"old"`
	New   int64    `json:"new"`
	Proof [][]byte `json:"proof"`
}

// BadRequest is a client's mistake, answered 400 with its message.
type BadRequest struct{ msg string }

func (e *BadRequest) Error() string { return e.msg }

// ParseConsistency reads ?old=N&new=M: decimal integers, 1 <= old <= new.
func ParseConsistency(r *http.Request) (old, new int64, err error) {
	q := r.URL.Query()
	for k := range q {
		if k != "old" && k != "new" {
			return 0, 0, &BadRequest{fmt.Sprintf("unknown query parameter %q: want old and new", k)}
		}
	}
	read := func(name string) (int64, error) {
		vs := q[name]
		if len(vs) != 1 {
			return 0, &BadRequest{fmt.Sprintf("%s is required once: a tree size", name)}
		}
		v, err := strconv.ParseInt(vs[0], 10, 64)
		if err != nil || v < 1 || strconv.FormatInt(v, 10) != vs[0] {
			return 0, &BadRequest{fmt.Sprintf("%s=%q is not a tree size (a decimal integer of at least 1)", name, truncate(vs[0], 40))}
		}
		return v, nil
	}
	if old, err = read("old"); err != nil {
		return 0, 0, err
	}
	if new, err = read("new"); err != nil {
		return 0, 0, err
	}
	if old > new {
		return 0, 0, &BadRequest{fmt.Sprintf("old (%d) is larger than new (%d)", old, new)}
	}
	return old, new, nil
}

// ProveConsistency is ParseConsistency's sizes' proof; a size beyond the
// latest checkpoint is a BadRequest.
func ProveConsistency(ctx context.Context, st *store.Store, old, new int64) (*ConsistencyProof, error) {
	cp, err := st.LogLatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if cp == nil || new > cp.TreeSize {
		var size int64
		if cp != nil {
			size = cp.TreeSize
		}
		return nil, &BadRequest{fmt.Sprintf("new (%d) is beyond the latest checkpoint's tree size (%d)", new, size)}
	}
	p, err := Consistency(ctx, st, old, new)
	if err != nil {
		return nil, err
	}
	return &ConsistencyProof{Old: old, New: new, Proof: hashes(p)}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
