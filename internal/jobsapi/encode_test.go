package jobsapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/store"
)

// encodingJSON is what appendChunk and appendPage must equal.
func encodingJSON(t *testing.T, v any, escapeHTML bool) []byte {
	t.Helper()
	if escapeHTML {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if _, page := v.(ChunkPage); !page {
		out = out[:len(out)-1]
	}
	return out
}

var encodeSeeds = []struct {
	streamType, data string
}{
	{"content", `{"content":" token","emitted_at_us":1764600000000000}`},
	{"content", `{"content":"<b>&amp;</b>"}`},
	{"content", `{ "content" : "spaced" }`},
	{"tool", `{"index":0,"id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"}`},
	{"content", "{\"content\":\"line\u2028sep\u2029\"}"},
	{"content", `{"content":"\u0000 \\ \" \n"}`},
	{"usage", `{"input_tokens":3,"output_tokens":5}`},
	{"content", `"just a string"`},
	{"content", `[1, 2.5e3, -0, true, null]`},
	{"we\"ird<type>", `{}`},
	{"content", ""},
	{"ünïcode", `{"content":"ünïcode ✓"}`},
}

// FuzzAppendChunk: the fast chunk encoders write exactly what
// encoding/json writes, for any chunk whose data is valid JSON (as stored
// data always is), with and without HTML escaping, and in a page.
func FuzzAppendChunk(f *testing.F) {
	for _, s := range encodeSeeds {
		f.Add(7, s.streamType, []byte(s.data), int64(1764600000123456789))
	}
	f.Add(0, "content", []byte(`{}`), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()) // clamps to 1677
	f.Fuzz(func(t *testing.T, seq int, streamType string, data []byte, nanos int64) {
		if len(data) > 0 && !json.Valid(data) {
			t.Skip()
		}
		c := store.Chunk{Seq: seq, StreamType: streamType, Data: data, CreatedAt: time.Unix(0, nanos).UTC()}
		if _, err := json.Marshal(c); err != nil {
			t.Skip() // encoding/json cannot write it either (a time past year 9999)
		}
		for _, esc := range []bool{true, false} {
			if got, want := appendChunk([]byte("x"), c, esc), append([]byte("x"), encodingJSON(t, c, esc)...); !bytes.Equal(got, want) {
				t.Fatalf("escapeHTML %v:\n got %s\nwant %s", esc, got, want)
			}
		}
		p := ChunkPage{Status: "running", FinishReason: streamType, Chunks: []store.Chunk{c, c}, NextOffset: seq, More: seq%2 == 0}
		if got, want := appendPage(nil, p), encodingJSON(t, p, false); !bytes.Equal(got, want) {
			t.Fatalf("page:\n got %s\nwant %s", got, want)
		}
	})
}

// TestAppendChunkFastPath: the chunks jobstream writes take the fast path
// (no encoding/json), so the fuzz target compares that path and not only
// the fallback.
func TestAppendChunkFastPath(t *testing.T) {
	for _, raw := range []string{encodeSeeds[0].data, encodeSeeds[3].data, encodeSeeds[6].data} {
		if !verbatimJSON([]byte(raw), true) {
			t.Errorf("%s: not verbatim", raw)
		}
	}
	for _, raw := range []string{encodeSeeds[1].data, encodeSeeds[2].data, encodeSeeds[4].data, ""} {
		if verbatimJSON([]byte(raw), true) {
			t.Errorf("%s: verbatim, but encoding/json changes it", raw)
		}
	}
}
