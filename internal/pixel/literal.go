package pixel

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/jobstream/jobstream/internal/jsonstr"
)

// literal parses one JSON or Python literal (string, number, true/True,
// false/False, null/None, list, dict; trailing commas allowed) and appends
// its JSON form to buf. depth is the nesting depth a bracket at the current
// token would have. With lenient, any unquoted word is taken as a string;
// skip uses that for arguments it drops.
func (p *parser) literal(buf []byte, depth int, lenient bool) ([]byte, error) {
	switch {
	case p.tok.kind == tokString:
		buf = appendJSONString(buf, p.tok.val)
		return buf, p.advance()
	case p.tok.kind == tokWord:
		b, ok := appendWord(buf, p.tok.text)
		if !ok {
			if !lenient {
				return buf, p.fail("unquoted word %s (quote strings)", p.tok)
			}
			b = appendJSONString(buf, p.tok.text)
		}
		return b, p.advance()
	case p.tok.is("[") || p.tok.is("{"):
		if depth > MaxDepth {
			return buf, p.syntax("brackets nested more than %d deep", MaxDepth)
		}
		if p.tok.is("[") {
			return p.list(buf, depth, lenient)
		}
		return p.dict(buf, depth, lenient)
	}
	return buf, p.syntax("expected a value, found %s", p.tok)
}

func (p *parser) list(buf []byte, depth int, lenient bool) ([]byte, error) {
	if err := p.advance(); err != nil {
		return buf, err
	}
	buf = append(buf, '[')
	for n := 0; !p.tok.is("]"); n++ {
		if n > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = p.literal(buf, depth+1, lenient); err != nil {
			return buf, err
		}
		if p.tok.is(",") {
			if err := p.advance(); err != nil {
				return buf, err
			}
			continue
		}
		if !p.tok.is("]") {
			return buf, p.syntax("expected \",\" or \"]\" in list, found %s", p.tok)
		}
	}
	return append(buf, ']'), p.advance()
}

func (p *parser) dict(buf []byte, depth int, lenient bool) ([]byte, error) {
	buf = append(buf, '{')
	n := 0
	err := p.members(func(key string) error {
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = appendJSONString(buf, key)
		buf = append(buf, ':')
		var err error
		buf, err = p.literal(buf, depth+1, lenient)
		return err
	})
	return append(buf, '}'), err
}

// object parses the dict at the current token into a map of JSON values.
func (p *parser) object(depth int) (map[string]json.RawMessage, error) {
	if depth > MaxDepth {
		return nil, p.syntax("brackets nested more than %d deep", MaxDepth)
	}
	type member struct {
		key        string
		start, end int
	}
	var members []member
	var buf []byte // all values, back to back
	err := p.members(func(key string) error {
		start := len(buf)
		var err error
		buf, err = p.literal(buf, depth+1, false)
		members = append(members, member{key, start, len(buf)})
		return err
	})
	if err != nil {
		return nil, err
	}
	m := make(map[string]json.RawMessage, len(members))
	for _, mb := range members {
		m[mb.key] = json.RawMessage(buf[mb.start:mb.end:mb.end])
	}
	return m, nil
}

// members parses `{ key: value, ... }`, calling value for each member with
// the current token at the start of its value. Keys are strings or bare
// words (Python ints, JavaScript-style names).
func (p *parser) members(value func(key string) error) error {
	if err := p.advance(); err != nil {
		return err
	}
	for !p.tok.is("}") {
		var key string
		switch p.tok.kind {
		case tokString:
			key = p.tok.val
		case tokWord:
			key = p.tok.text
		default:
			return p.syntax("expected a key, found %s", p.tok)
		}
		if err := p.advance(); err != nil {
			return err
		}
		if err := p.expect(":", "after key"); err != nil {
			return err
		}
		if err := value(key); err != nil {
			return err
		}
		if p.tok.is(",") {
			if err := p.advance(); err != nil {
				return err
			}
			continue
		}
		if !p.tok.is("}") {
			return p.syntax("expected \",\" or \"}\" in object, found %s", p.tok)
		}
	}
	return p.advance()
}

func isNull(w string) bool { return w == "null" || w == "None" }

// appendWord appends the JSON form of a bare word: a JSON or Python constant
// or a finite number. It reports false for anything else.
func appendWord(buf []byte, w string) ([]byte, bool) {
	switch w {
	case "true", "True":
		return append(buf, "true"...), true
	case "false", "False":
		return append(buf, "false"...), true
	case "null", "None":
		return append(buf, "null"...), true
	}
	if isJSONNumber(w) {
		return append(buf, w...), true
	}
	// Python spellings JSON lacks: +1, 0x1F, 1_000, .5, 5.
	if i, err := strconv.ParseInt(w, 0, 64); err == nil {
		return strconv.AppendInt(buf, i, 10), true
	}
	if f, err := strconv.ParseFloat(w, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
		return strconv.AppendFloat(buf, f, 'g', -1, 64), true
	}
	return buf, false
}

// isJSONNumber reports whether s matches the JSON number grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func isJSONNumber(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// appendJSONString appends s as a JSON string. Unlike json.Marshal it leaves
// < > & alone, so prompts stay readable in the stored params.
func appendJSONString(buf []byte, s string) []byte { return jsonstr.Append(buf, s) }
