package bench

import (
	"testing"
)

func TestTracker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                  string
		seqs                  []int
		expected              int
		lost, dups, reordered int
	}{
		{"InOrder", []int{0, 1, 2, 3}, 4, 0, 0, 0},
		{"Gap", []int{0, 1, 3}, 4, 1, 0, 0},
		{"Tail", []int{0, 1}, 4, 2, 0, 0},
		{"Duplicate", []int{0, 1, 1, 2}, 3, 0, 1, 0},
		{"Reordered", []int{0, 2, 1, 3}, 4, 0, 0, 1},
		{"ResentAfterReconnect", []int{0, 1, 2, 1, 2, 3}, 4, 0, 2, 0},
		{"Everything", []int{0, 3, 3, 1, 5}, 6, 2, 1, 1},
		{"Nothing", nil, 3, 3, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := newTracker()
			for _, s := range tc.seqs {
				tr.Seq(s)
			}
			if got := tr.Lost(tc.expected); got != tc.lost {
				t.Errorf("lost = %d, want %d", got, tc.lost)
			}
			if tr.dups != tc.dups {
				t.Errorf("duplicated = %d, want %d", tr.dups, tc.dups)
			}
			if tr.reordered != tc.reordered {
				t.Errorf("reordered = %d, want %d", tr.reordered, tc.reordered)
			}
		})
	}
}

// TestTrackerStamps: readers without seqs (SEMOSS) are checked with the
// content chunks' emitted_at_us stamps; other chunks only count.
func TestTrackerStamps(t *testing.T) {
	t.Parallel()
	tr := newTracker()
	for _, c := range []struct {
		stamp int64
		text  string
	}{
		{100, "a"},
		{200, "b"},
		{200, "c"}, // emitted in the same microsecond: not a duplicate
		{200, "b"}, // a duplicate
		{150, "x"}, // out of order
		{300, "d"},
		{0, ""}, // usage and finish chunks: counted only
		{0, ""},
	} {
		tr.Stamp(c.stamp, c.text)
	}
	if tr.dups != 1 || tr.reordered != 1 {
		t.Fatalf("duplicated %d, reordered %d; want 1, 1", tr.dups, tr.reordered)
	}
	if lost := tr.Lost(8); lost != 1 {
		t.Fatalf("lost = %d, want 1 (7 distinct of 8)", lost)
	}
}

func TestLatencyWindow(t *testing.T) {
	t.Parallel()
	tr := newTracker()
	tr.Latency(1_000, 6_000, 2_000, 10_000)   // emitted before the window
	tr.Latency(2_000, 7_000, 2_000, 10_000)   // 5 ms
	tr.Latency(9_000, 9_500, 2_000, 10_000)   // 0.5 ms
	tr.Latency(10_000, 11_000, 2_000, 10_000) // after
	p := percentiles(tr.lat)
	if len(tr.lat) != 2 || p.Max != 5 || p.P50 != 0.5 {
		t.Fatalf("samples %v, percentiles %+v", tr.lat, p)
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	// /proc/<pid>/stat with a command name containing spaces and ')'.
	stat := []byte("1234 (jobstream (x) y) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 12 0 100 0 0")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 4 {
		t.Fatalf("cpu = %v, %v; want 4 s (250 + 150 ticks)", cpu, err)
	}
}

func TestFastChunk(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in        string
		ok        bool
		seq       int
		emittedAt int64
	}{
		{`{"seq":12,"stream_type":"content","data":{"content":" a","emitted_at_us":1795465736129458},"created_at":"x"}`, true, 12, 1795465736129458},
		{`{"seq":3,"stream_type":"usage","data":{"output_tokens":5},"created_at":"x"}`, true, 3, 0},
		{`{"seq":4,"stream_type":"content","data":{"content": "b", "emitted_at_us": 17}}`, true, 4, 17},
		{`{"stream_type":"content","seq":3}`, false, 0, 0},
		{`{"seq":-1,"data":{}}`, false, 0, 0},
	} {
		var c chunkJSON
		ok := fastChunk([]byte(tc.in), &c)
		if ok != tc.ok {
			t.Fatalf("%s: ok = %v", tc.in, ok)
		}
		if !ok {
			continue
		}
		if *c.Seq != tc.seq || c.Data.EmittedAtUS != tc.emittedAt {
			t.Fatalf("%s: seq %d emitted %d", tc.in, *c.Seq, c.Data.EmittedAtUS)
		}
	}
}

func TestCompareStored(t *testing.T) {
	t.Parallel()
	k := func(stamp int64, text string) stampKey { return stampKey{stamp, text} }
	// Two tokens emitted in the same microsecond, with the same text.
	stored := []stampKey{k(1, "a"), k(2, " the"), k(2, " the"), k(3, "b"), k(4, "c")}
	for _, tc := range []struct {
		name                  string
		got                   []stampKey
		others                int
		lost, dups, reordered int
	}{
		{"Exact", stored, 2, 0, 0, 0},
		{"Lost", []stampKey{k(1, "a"), k(2, " the"), k(3, "b"), k(4, "c")}, 2, 1, 0, 0},
		{"Duplicated", []stampKey{k(1, "a"), k(2, " the"), k(2, " the"), k(2, " the"), k(3, "b"), k(4, "c")}, 2, 0, 1, 0},
		{"Reordered", []stampKey{k(1, "a"), k(2, " the"), k(2, " the"), k(4, "c"), k(3, "b")}, 2, 0, 0, 1},
		{"OthersMissing", stored, 1, 1, 0, 0},
		{"OthersTwice", stored, 3, 0, 1, 0},
	} {
		tr := newTracker()
		for _, g := range tc.got {
			tr.Stamp(g.stamp, g.text)
		}
		for range tc.others {
			tr.Stamp(0, "")
		}
		lost, dups, reordered := tr.compareStored(stored, 2)
		if lost != tc.lost || dups != tc.dups || reordered != tc.reordered {
			t.Errorf("%s: lost %d dup %d reordered %d; want %d %d %d", tc.name, lost, dups, reordered, tc.lost, tc.dups, tc.reordered)
		}
	}
}
