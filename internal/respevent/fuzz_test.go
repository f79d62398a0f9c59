package respevent_test

import (
	"encoding/json"
	"testing"

	"github.com/jobstream/jobstream/internal/respevent"
	"github.com/jobstream/jobstream/internal/store"
)

// FuzzFeed: any chunks (stored chunks are JSON objects of any shape) give
// gap-free sequence numbers and valid JSON events, and a live reader who
// saw the job start first derives the same bytes.
func FuzzFeed(f *testing.F) {
	f.Add("content", `{"content":"a"}`, "tool", `{"index":0,"function":{"arguments":"{"}}`, "tool", `{"index":1,"id":"c","function":{"name":"f"}}`, `{"finish_reason":"stop"}`)
	f.Add("thinking", `{"thinking":"t"}`, "content", `{"content":""}`, "usage", `{"input_tokens":1}`, `{"finish_reason":"error","error":{"message":"m"}}`)
	f.Fuzz(func(t *testing.T, st1, d1, st2, d2, st3, d3, fin string) {
		var cs []store.Chunk
		for i, c := range [][2]string{{st1, d1}, {st2, d2}, {st3, d3}, {"content", fin}} {
			if !json.Valid([]byte(c[1])) {
				return
			}
			cs = append(cs, store.Chunk{Seq: i, StreamType: c[0], Data: json.RawMessage(c[1]), CreatedAt: t0})
		}
		for _, bg := range []bool{false, true} {
			want := derive(meta(bg), cs)
			d := respevent.New(id, t0.Unix(), meta(bg))
			live := append(d.Open(), d.Start()...)
			for _, c := range cs {
				live = append(live, d.Feed(c)...)
			}
			if string(sse(live)) != string(sse(want)) {
				t.Fatalf("live and resumed events differ")
			}
			for i, e := range want {
				if e.Seq != i || !json.Valid(e.JSON()) {
					t.Fatalf("event %d: seq %d, JSON %s", i, e.Seq, e.JSON())
				}
			}
			_ = d.Response(respevent.StatusInProgress)
		}
	})
}
