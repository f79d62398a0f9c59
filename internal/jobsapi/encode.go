package jobsapi

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/jobstream/jobstream/internal/store"
)

// The chunk encoders below write exactly the bytes encoding/json writes
// for the same values (FuzzAppendChunk holds them to it), without its
// reflection and its byte-by-byte scan of every json.RawMessage: one SSE
// event or long-poll page per woken reader is the server's hottest path
// (json.Marshal was 13% of its CPU at 1,000 SSE streams x 50 tokens/s).
// Whatever the fast path does not cover (data with whitespace to compact
// or characters to escape, unusual strings or times) goes through
// encoding/json.

// appendChunk appends c as json.Marshal writes it (escapeHTML: <, > and &
// escaped, as in SSE events) or as a json.Encoder with SetEscapeHTML(false)
// does (the long-poll page, without the Encoder's newline).
func appendChunk(b []byte, c store.Chunk, escapeHTML bool) []byte {
	if !verbatimJSON(c.Data, escapeHTML) || !plainString(c.StreamType) || !plainTime(c.CreatedAt) {
		return appendSlow(b, c, escapeHTML)
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(c.Seq), 10)
	b = append(b, `,"stream_type":"`...)
	b = append(b, c.StreamType...)
	b = append(b, `","data":`...)
	b = append(b, c.Data...)
	b = append(b, `,"created_at":"`...)
	b = c.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// appendPage appends p as the long-poll handler's json.Encoder with
// SetEscapeHTML(false) writes it, newline included.
func appendPage(b []byte, p ChunkPage) []byte {
	if !plainString(p.Status) || !plainString(p.FinishReason) || p.Chunks == nil {
		return appendSlow(b, p, false)
	}
	b = append(b, `{"status":"`...)
	b = append(b, p.Status...)
	b = append(b, '"')
	if p.FinishReason != "" {
		b = append(b, `,"finish_reason":"`...)
		b = append(b, p.FinishReason...)
		b = append(b, '"')
	}
	b = append(b, `,"chunks":[`...)
	for i, c := range p.Chunks {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendChunk(b, c, false)
	}
	b = append(b, `],"next_offset":`...)
	b = strconv.AppendInt(b, int64(p.NextOffset), 10)
	b = append(b, `,"more":`...)
	b = strconv.AppendBool(b, p.More)
	return append(b, "}\n"...)
}

// appendSlow is encoding/json: json.Marshal with escapeHTML, else an
// Encoder without HTML escaping (whose trailing newline is kept only for
// a page, as the handler's Encoder writes one).
func appendSlow(b []byte, v any, escapeHTML bool) []byte {
	var out []byte
	if escapeHTML {
		out, _ = json.Marshal(v)
	} else {
		var buf bytesBuffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		out = buf
		if _, page := v.(ChunkPage); !page && len(out) > 0 {
			out = out[:len(out)-1]
		}
	}
	return append(b, out...)
}

type bytesBuffer []byte

func (b *bytesBuffer) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

// plainString reports whether encoding/json writes s between quotes as it
// is: printable ASCII without quotes, backslashes or HTML characters.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// plainTime reports whether t.AppendFormat(RFC3339Nano) is what
// time.Time.MarshalJSON writes (a four-digit year; MarshalJSON fails
// outside it).
func plainTime(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}

// verbatimJSON reports whether encoding/json writes the valid JSON raw as
// it is: already compact (no whitespace outside strings) and, with
// escapeHTML, free of <, > and &; encoding/json escapes U+2028 and U+2029
// in a RawMessage only with escapeHTML as well. Data stored as PostgreSQL
// json is valid JSON; anything else (empty data, which encodes as null)
// is not verbatim.
func verbatimJSON(raw []byte, escapeHTML bool) bool {
	if len(raw) == 0 {
		return false
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case escapeHTML && (c == '<' || c == '>' || c == '&'):
			return false
		case escapeHTML && c == 0xE2 && i+2 < len(raw) && raw[i+1] == 0x80 && raw[i+2]&^1 == 0xA8:
			return false
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		}
	}
	return true
}
