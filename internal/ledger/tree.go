package ledger

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/store"
)

// hashReader reads stored hashes through read, serving those computed in
// this transaction but not stored yet from pending first.
type hashReader struct {
	ctx     context.Context
	read    func(ctx context.Context, idx []int64) ([]tlog.Hash, error)
	pending map[int64]tlog.Hash
}

func (r *hashReader) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	var miss []int64
	for _, x := range idx {
		if _, ok := r.pending[x]; !ok {
			miss = append(miss, x)
		}
	}
	var got []tlog.Hash
	if len(miss) > 0 {
		var err error
		if got, err = r.read(r.ctx, miss); err != nil {
			return nil, err
		}
	}
	for i, j := 0, 0; i < len(idx); i++ {
		if h, ok := r.pending[idx[i]]; ok {
			out[i] = h
			continue
		}
		out[i] = got[j]
		j++
	}
	return out, nil
}

// leavesHashed is the tree size whose stored hashes number count:
// tlog.StoredHashCount is increasing, so a binary search finds it.
func leavesHashed(count int64) (int64, error) {
	n := int64(sort.Search(int(count+1), func(n int) bool { return tlog.StoredHashCount(int64(n)) >= count }))
	if tlog.StoredHashCount(n) != count {
		return 0, fmt.Errorf("the log has %d tree hashes, which no tree size has: the hashes were tampered with", count)
	}
	return n, nil
}

// TreeSize is the number of leaves in the tree (the hashed ones).
func TreeSize(ctx context.Context, st *store.Store) (int64, error) {
	c, err := st.LogHashCount(ctx)
	if err != nil {
		return 0, err
	}
	return leavesHashed(c)
}

func dbReader(ctx context.Context, st *store.Store) *hashReader {
	return &hashReader{ctx: ctx, read: st.LogReadHashes}
}

// TreeHash is the root of the tree of the first size leaves.
func TreeHash(ctx context.Context, st *store.Store, size int64) (tlog.Hash, error) {
	return tlog.TreeHash(size, dbReader(ctx, st))
}

// ErrRange is a proof asked for beyond the tree.
var ErrRange = errors.New("out of range")

// Inclusion proves leaf index is in the tree of size leaves.
func Inclusion(ctx context.Context, st *store.Store, index, size int64) (tlog.RecordProof, error) {
	if index < 0 || index >= size {
		return nil, fmt.Errorf("leaf %d in a tree of %d: %w", index, size, ErrRange)
	}
	p, err := tlog.ProveRecord(size, index, dbReader(ctx, st))
	if err != nil {
		return nil, fmt.Errorf("prove leaf %d in tree %d: %w", index, size, err)
	}
	return p, nil
}

// Consistency proves the tree of size old is a prefix of the tree of size
// new (0 < old <= new <= the tree's size).
func Consistency(ctx context.Context, st *store.Store, old, new int64) (tlog.TreeProof, error) {
	size, err := TreeSize(ctx, st)
	if err != nil {
		return nil, err
	}
	if old < 1 || old > new || new > size {
		return nil, fmt.Errorf("trees %d and %d of a log of %d: %w", old, new, size, ErrRange)
	}
	p, err := tlog.ProveTree(new, old, dbReader(ctx, st))
	if err != nil {
		return nil, fmt.Errorf("prove tree %d extends tree %d: %w", new, old, err)
	}
	return p, nil
}
