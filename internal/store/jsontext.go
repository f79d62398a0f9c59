package store

import "bytes"

// pgJSON returns b, JSON text, as PostgreSQL's jsonb accepts it: every
// \u0000 escape (a NUL character, which jsonb cannot hold) becomes \ufffd,
// the replacement character. Without this one NUL in a model's output or an
// upstream error message would fail the chunk writer's whole batch, for
// every job in it, on every retry. Other bytes are unchanged; b is copied
// only when it holds a NUL escape.
func pgJSON(b []byte) []byte {
	const nul = `\u0000`
	if !bytes.Contains(b, []byte(nul)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			out = append(out, b[i])
			continue
		}
		// An escape: a NUL one is replaced; any other (\\ included) is
		// copied whole, so the backslash of \\u0000 is never taken for
		// the start of an escape.
		if bytes.HasPrefix(b[i:], []byte(nul)) {
			out = append(out, `\ufffd`...)
			i += len(nul) - 1
			continue
		}
		out = append(out, b[i], b[i+1])
		i++
	}
	return out
}
