package chain_test

import (
	"crypto/sha256"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/chain"
)

// TestNextIsTheDefinition: Next is sha256(prev || seq || 0 || type || 0 || data).
func TestNextIsTheDefinition(t *testing.T) {
	t.Parallel()
	id := uuid.MustParse("01934b3c-0000-7000-8000-000000000001")
	seed := chain.Seed(id)
	if want := sha256.Sum256(id[:]); seed != want {
		t.Fatalf("Seed = %x, want sha256 of the id's bytes %x", seed, want)
	}
	data := []byte(`{"content":"héllo"}`)
	got := chain.Next(seed, 12, "content", data)
	in := append(append([]byte{}, seed[:]...), strconv.Itoa(12)+"\x00content\x00"...)
	if want := sha256.Sum256(append(in, data...)); got != want {
		t.Errorf("Next = %x, want %x", got, want)
	}
}

// BenchmarkNext: the chain's cost per chunk on the write path.
func BenchmarkNext(b *testing.B) {
	data := []byte(`{"content":" token","emitted_at_us":1764620000000000}`)
	h := chain.Seed(uuid.New())
	for i := 0; b.Loop(); i++ {
		h = chain.Next(h, i, "content", data)
	}
}
