// Package jsonstr appends Go strings as JSON strings without encoding/json's
// reflection and buffers, for hot paths (one per streamed token) and for
// hand-built JSON.
package jsonstr

import "unicode/utf8"

// Append appends s as a JSON string, readable: quotes, backslashes and
// control characters escaped (\b and \f as \u0008 and \u000c), < > & left
// alone, U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
func Append(buf []byte, s string) []byte { return appendString(buf, s, false) }

// AppendMarshal appends s exactly as encoding/json.Marshal writes it: as
// Append, but with <, > and & as \u003c, \u003e and \u0026, and \b and \f
// as themselves.
func AppendMarshal(buf []byte, s string) []byte { return appendString(buf, s, true) }

func appendString(buf []byte, s string, marshal bool) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!marshal || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c == '\n':
				buf = append(buf, '\\', 'n')
			case c == '\r':
				buf = append(buf, '\\', 'r')
			case c == '\t':
				buf = append(buf, '\\', 't')
			case marshal && c == '\b':
				buf = append(buf, '\\', 'b')
			case marshal && c == '\f':
				buf = append(buf, '\\', 'f')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid JavaScript in older engines.
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
