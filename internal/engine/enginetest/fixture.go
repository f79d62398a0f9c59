package enginetest

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/jobstream/jobstream/internal/engine"
)

// APIKey is the key fixtures expect the engine under test to be configured
// with: the Unauthorized fixtures echo it back, as some upstreams do, to
// prove that error messages never carry it.
const APIKey = "sk-test-Zx9Qw7Er5Ty3Ui1Op"

// Fixture is a scripted upstream exchange and exactly what an engine must
// make of it.
//
// Fixtures that retry expect a fast retry policy (a RetryBaseDelay of a few
// milliseconds): their rate-limit responses say Retry-After: 0, but error
// events and 5xx without the header back off from the base delay.
type Fixture struct {
	Name string
	// Responses are the fake server's answers, one per request.
	Responses []Response
	// Want is the exact sequence of chunks the engine emits, each as
	// {"stream_type":..,"data":{..}} JSON. Compare with Canonical.
	Want []string
	// Finish is the engine's result when the turn ends normally.
	Finish engine.Finish
	// ErrType is the Type of the *engine.Error of a failed turn, and
	// ErrMessage a part of its Message.
	ErrType    string
	ErrMessage string
	// Requests is how many requests the engine makes (one per attempt).
	Requests int
}

// Rows returns the chunk rows a worker stores for a fixture that ends
// normally: Want, then the finish chunk built from Finish.
func (f Fixture) Rows() []string {
	out := append([]string(nil), f.Want...)
	if f.ErrType == "" {
		b, _ := json.Marshal(map[string]any{
			"stream_type": f.Finish.Stream,
			"data":        map[string]string{"finish_reason": f.Finish.Reason},
		})
		out = append(out, string(b))
	}
	return out
}

// Canonical re-encodes a JSON document with sorted keys and no spaces, so
// that chunks can be compared as strings whatever their key order.
func Canonical(s string) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Sprintf("invalid JSON %q: %v", s, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unencodable JSON %q: %v", s, err)
	}
	return string(b)
}

// ChunkJSON returns a chunk as canonical {"stream_type":..,"data":..} JSON.
func ChunkJSON(c engine.Chunk) string {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Sprintf("unencodable chunk: %v", err)
	}
	return Canonical(string(b))
}

// WaitAfterSplit returns a copy of r with Wait(ch) inserted after the first
// write that ends inside a multi-byte character, so that the rest of the
// character is sent only once ch is closed (see RuneSplitClient).
func WaitAfterSplit(r Response, ch <-chan struct{}) Response {
	out := r
	out.Steps = nil
	inserted := false
	for _, st := range r.Steps {
		out.Steps = append(out.Steps, st)
		if !inserted && len(st.write) > 0 && endsInsideRune(st.write) {
			out.Steps = append(out.Steps, Wait(ch))
			inserted = true
		}
	}
	if !inserted {
		panic("enginetest: no write ends inside a character")
	}
	return out
}
