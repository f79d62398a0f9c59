package pixel

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

const (
	encodeOpen  = "<encode>"
	encodeClose = "</encode>"
)

type tokKind int

const (
	tokEOF    tokKind = iota // end of the text being lexed
	tokWord                  // identifier, number, UUID, true, None, ...
	tokString                // quoted string or bare <encode> block; val is decoded
	tokPunct                 // one of ( ) [ ] { } , = : | ;
	tokOther                 // any other character (only unsupported pixels use these)
)

type token struct {
	kind tokKind
	pos  int    // byte offset of the token in the whole expression
	end  int    // byte offset just past the token
	text string // source text
	val  string // decoded value of a tokString, when the lexer decodes
}

// is reports whether t is the punctuation p.
func (t token) is(p string) bool { return t.kind == tokPunct && t.text == p }

// String describes t for error messages.
func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of pixel"
	case tokString:
		return "string"
	}
	return strconv.Quote(clip(t.text, 40))
}

// lexer splits src[pos:end] into tokens. Positions are offsets into the whole
// of src, so errors point at the right place in a multi-pixel expression.
type lexer struct {
	src    string
	pos    int
	end    int
	decode bool   // set token.val for strings; off for the splitting pass
	buf    []byte // scratch space for decoding strings
}

func isWordRune(r rune) bool {
	switch {
	case r < utf8.RuneSelf:
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
			r == '_' || r == '-' || r == '.' || r == '+'
	default:
		return unicode.IsLetter(r) || unicode.IsDigit(r)
	}
}

func (l *lexer) next() (token, error) {
	for l.pos < l.end {
		r, size := utf8.DecodeRuneInString(l.src[l.pos:l.end])
		if !unicode.IsSpace(r) {
			break
		}
		l.pos += size
	}
	start := l.pos
	if start >= l.end {
		return token{kind: tokEOF, pos: l.end, end: l.end}, nil
	}
	r, size := utf8.DecodeRuneInString(l.src[start:l.end])
	switch {
	case r == '"' || r == '\'':
		return l.quoted(byte(r))
	case strings.HasPrefix(l.src[start:l.end], encodeOpen):
		body, next, err := l.encodeBlock(start)
		if err != nil {
			return token{}, err
		}
		l.pos = next
		return token{kind: tokString, pos: start, end: next, text: l.src[start:next], val: body}, nil
	case strings.ContainsRune("()[]{},=:|;", r):
		l.pos += size
		return token{kind: tokPunct, pos: start, end: l.pos, text: l.src[start:l.pos]}, nil
	case isWordRune(r):
		l.pos += size
		for l.pos < l.end {
			r, size := utf8.DecodeRuneInString(l.src[l.pos:l.end])
			if !isWordRune(r) {
				break
			}
			l.pos += size
		}
		return token{kind: tokWord, pos: start, end: l.pos, text: l.src[start:l.pos]}, nil
	default:
		l.pos += size
		return token{kind: tokOther, pos: start, end: l.pos, text: l.src[start:l.pos]}, nil
	}
}

// encodeBlock reads the <encode> block starting at start. The body is
// literal: it ends at the first </encode>, whatever comes before it.
func (l *lexer) encodeBlock(start int) (body string, next int, err error) {
	bodyStart := start + len(encodeOpen)
	n := strings.Index(l.src[bodyStart:l.end], encodeClose)
	if n < 0 {
		return "", 0, &SyntaxError{Pos: start, Msg: "unterminated <encode> block"}
	}
	return l.src[bodyStart : bodyStart+n], bodyStart + n + len(encodeClose), nil
}

// quoted reads a string quoted with q. <encode> blocks inside it are taken
// verbatim (without the tags), so their body may hold either quote.
// Elsewhere a backslash starts an escape: \" \' \\ \/ \n \t \r \b \f,
// \xHH, \uHHHH (with surrogate pairs) and \UHHHHHHHH, as JSON and Python
// repr() write them. Any other backslash is kept as is.
func (l *lexer) quoted(q byte) (token, error) {
	start := l.pos
	// The value is built lazily: while it is one piece of src (the common
	// cases "text" and "<encode>text</encode>") it is a substring, not a copy.
	var (
		b   = l.buf[:0]
		one string // the value so far, while it is a single piece
		inB bool   // the value so far is in b instead
	)
	add := func(s string) {
		switch {
		case s == "":
		case inB:
			b = append(b, s...)
		case one == "":
			one = s
		default:
			b = append(append(b, one...), s...)
			inB = true
		}
	}
	lit := start + 1 // start of the raw text not yet added
	for i := lit; ; {
		if i >= l.end {
			return token{}, &SyntaxError{Pos: start, Msg: "unterminated string"}
		}
		c := l.src[i]
		switch {
		case c == q:
			add(l.src[lit:i])
			l.pos = i + 1
			l.buf = b
			t := token{kind: tokString, pos: start, end: l.pos, text: l.src[start:l.pos], val: one}
			if inB && l.decode {
				t.val = string(b)
			}
			return t, nil
		case c == '<' && strings.HasPrefix(l.src[i:l.end], encodeOpen):
			body, next, err := l.encodeBlock(i)
			if err != nil {
				return token{}, err
			}
			add(l.src[lit:i])
			add(body)
			lit, i = next, next
		case c == '\\':
			add(l.src[lit:i])
			if !inB {
				b, inB = append(b, one...), true
			}
			var err error
			if b, i, err = l.escape(b, i); err != nil {
				return token{}, err
			}
			lit = i
		default:
			i++
		}
	}
}

// escape decodes the escape sequence at src[i] (a backslash), appends it to
// b and returns the offset after it.
func (l *lexer) escape(b []byte, i int) ([]byte, int, error) {
	if i+1 >= l.end {
		return b, i + 1, nil // the quote loop reports the unterminated string
	}
	c := l.src[i+1]
	switch c {
	case '"', '\'', '\\', '/':
		return append(b, c), i + 2, nil
	case 'n':
		return append(b, '\n'), i + 2, nil
	case 't':
		return append(b, '\t'), i + 2, nil
	case 'r':
		return append(b, '\r'), i + 2, nil
	case 'b':
		return append(b, '\b'), i + 2, nil
	case 'f':
		return append(b, '\f'), i + 2, nil
	case 'x', 'u', 'U':
		digits := 2
		switch c {
		case 'u':
			digits = 4
		case 'U':
			digits = 8
		}
		r, ok := l.hex(i+2, digits)
		if !ok {
			return b, 0, &SyntaxError{Pos: i, Msg: "invalid \\" + string(c) + " escape"}
		}
		next := i + 2 + digits
		if c == 'u' && utf16.IsSurrogate(r) && next+6 <= l.end && l.src[next:next+2] == `\u` {
			// A JSON surrogate pair: \uD83D\uDE00.
			if lo, ok := l.hex(next+2, 4); ok {
				if pair := utf16.DecodeRune(r, lo); pair != utf8.RuneError {
					r, next = pair, next+6
				}
			}
		}
		if r == 0 {
			return b, 0, &SyntaxError{Pos: i, Msg: "NUL character not allowed"}
		}
		// utf8.AppendRune turns a lone surrogate into U+FFFD, as encoding/json does.
		return utf8.AppendRune(b, r), next, nil
	default:
		return append(b, '\\'), i + 1, nil
	}
}

func (l *lexer) hex(i, n int) (rune, bool) {
	if i+n > l.end {
		return 0, false
	}
	var v uint32
	for _, c := range []byte(l.src[i : i+n]) {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | uint32(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | uint32(c-'A'+10)
		default:
			return 0, false
		}
	}
	if v > unicode.MaxRune {
		return 0, false
	}
	return rune(v), true
}
