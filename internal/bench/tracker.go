package bench

import (
	"slices"
	"time"
)

// tracker checks what one reader received of one job: every chunk exactly
// once and in order. Readers that see seqs (SSE, long-poll) call Seq;
// readers that do not (SEMOSS pollers, whose chunks carry no seq) call
// Ordinal with the chunk's position in what they received, and the
// emitted_at_us stamps of content chunks stand in for identity.
type tracker struct {
	seen      []bool
	distinct  int
	maxSeq    int
	received  int
	dups      int
	reordered int

	// Without seqs: the content chunks seen, by stamp and text (two
	// tokens may be emitted in the same microsecond).
	stamps    map[stampKey]bool
	lastStamp int64
	got       []stampKey // content chunks in the order received
	others    int        // chunks without a stamp

	// latencies in µs of content chunks emitted inside the window.
	lat []int32
}

func newTracker() *tracker { return &tracker{maxSeq: -1} }

// Seq records the chunk with sequence number seq.
func (t *tracker) Seq(seq int) {
	t.received++
	if seq < 0 {
		t.reordered++
		return
	}
	for seq >= len(t.seen) {
		t.seen = append(t.seen, false)
	}
	switch {
	case t.seen[seq]:
		t.dups++
	case seq < t.maxSeq:
		t.reordered++
		t.seen[seq] = true
		t.distinct++
	default:
		t.seen[seq] = true
		t.distinct++
		t.maxSeq = seq
	}
}

type stampKey struct {
	stamp int64
	text  string
}

// Stamp records a chunk without a seq: content chunks carry the emitted_at_us
// stamp (stamp > 0), non-decreasing within a job, and their text; other
// chunks have no stamp and are only counted.
func (t *tracker) Stamp(stamp int64, text string) {
	t.received++
	if stamp <= 0 {
		t.distinct++
		t.others++
		return
	}
	t.got = append(t.got, stampKey{stamp, text})
	if t.stamps == nil {
		t.stamps = map[stampKey]bool{}
	}
	k := stampKey{stamp, text}
	switch {
	case t.stamps[k]:
		t.dups++
	case stamp < t.lastStamp:
		t.reordered++
		t.stamps[k] = true
		t.distinct++
	default:
		t.stamps[k] = true
		t.distinct++
		t.lastStamp = stamp
	}
}

// Latency records the delivery latency of a content chunk emitted at
// emitted (Unix µs) and received at now, when emitted falls in [from, to).
func (t *tracker) Latency(emitted, now int64, from, to int64) {
	if emitted < from || emitted >= to {
		return
	}
	d := now - emitted
	if d < 0 {
		d = 0
	}
	t.lat = append(t.lat, int32(min(d, 1<<31-1)))
}

// Lost is how many of the job's expected chunks never arrived.
func (t *tracker) Lost(expected int) int {
	if t.stamps == nil {
		n := 0
		for i := range min(expected, len(t.seen)) {
			if t.seen[i] {
				n++
			}
		}
		return expected - n
	}
	return max(expected-t.distinct, 0)
}

// compareStored checks what a reader without seqs received against the
// job's stored chunks: stored holds the content chunks' stamps in seq order,
// storedOthers the number of chunks without one. A chunk received more
// often than stored is duplicated, less often lost; reordered counts chunks
// received after one stored later.
func (t *tracker) compareStored(stored []stampKey, storedOthers int) (lost, dups, reordered int) {
	positions := map[stampKey][]int{}
	for i, k := range stored {
		positions[k] = append(positions[k], i)
	}
	used := map[stampKey]int{}
	last := -1
	for _, k := range t.got {
		n := used[k]
		used[k] = n + 1
		if n >= len(positions[k]) {
			dups++
			continue
		}
		if at := positions[k][n]; at < last {
			reordered++
		} else {
			last = at
		}
	}
	for k, ps := range positions {
		lost += max(len(ps)-used[k], 0)
	}
	lost += max(storedOthers-t.others, 0)
	dups += max(t.others-storedOthers, 0)
	return lost, dups, reordered
}

// Percentiles of a latency sample, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(us []int32) Percentiles {
	if len(us) == 0 {
		return Percentiles{}
	}
	slices.Sort(us)
	at := func(q float64) float64 {
		i := int(q * float64(len(us)-1))
		return float64(us[i]) / 1000
	}
	return Percentiles{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: float64(us[len(us)-1]) / 1000}
}

func micros(t time.Time) int64 { return t.UnixMicro() }
