package store

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrUnstorable marks a value PostgreSQL would refuse to store: a client's
// mistake (400), never a failed INSERT (500). Errors wrapping it name the
// field and the problem.
var ErrUnstorable = errors.New("value cannot be stored")

// UnstorableError is an ErrUnstorable naming the field and the problem.
type UnstorableError struct {
	// Field is the value's name, such as "command" or
	// "params.temperature[2]".
	Field string
	// Problem says what PostgreSQL refuses in it.
	Problem string
}

func (e *UnstorableError) Error() string { return e.Field + ": " + e.Problem }

// Unwrap makes errors.Is(err, ErrUnstorable) hold.
func (e *UnstorableError) Unwrap() error { return ErrUnstorable }

// CheckText returns an *UnstorableError when PostgreSQL's text type would
// refuse s: text holds no NUL character and only valid UTF-8 (the
// database's encoding). field names s in the error.
func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return &UnstorableError{Field: field, Problem: "is not valid UTF-8"}
	}
	if strings.IndexByte(s, 0) >= 0 {
		return &UnstorableError{Field: field, Problem: `contains a NUL character (\u0000), which cannot be stored`}
	}
	return nil
}

// Limits of what jsonb holds, beyond JSON's own grammar. jsonb stores
// numbers as numeric, whose first significant digit may be at most the
// 131072nd before the decimal point and whose display scale (digits after
// it) at most 16383; its input parser refuses exponents of 2^30 or more
// outright. Nesting is bounded by PostgreSQL's stack (max_stack_depth):
// 10,000 levels pass at the default 2 MB, 100,000 do not; we allow far
// fewer than either.
const (
	maxNumericWeight = 131071 // the decimal exponent of the leading digit
	maxNumericScale  = 16383
	maxNumericExp    = 1<<30 - 1
	// MaxJSONDepth is the deepest nesting a stored JSON value may have.
	MaxJSONDepth = 512
)

// CheckJSON returns an *UnstorableError when PostgreSQL's jsonb would
// refuse raw, naming the offending value's place as field followed by its
// path (field.key[3]): invalid JSON or UTF-8, a NUL character (\u0000) in
// a string or an object key, a UTF-16 surrogate escape that is not half of
// a pair (\ud800 alone), a number numeric cannot hold (1e999999, 1e-20000),
// or nesting deeper than MaxJSONDepth. Everything it accepts, jsonb stores.
func CheckJSON(field string, raw []byte) error {
	if !utf8.Valid(raw) {
		return &UnstorableError{Field: field, Problem: "is not valid UTF-8"}
	}
	if !json.Valid(raw) {
		return &UnstorableError{Field: field, Problem: "is not valid JSON"}
	}
	c := jsonChecker{b: raw}
	return c.value(field, 0)
}

// jsonChecker walks JSON text already known to be valid.
type jsonChecker struct {
	b []byte
	i int
}

func (c *jsonChecker) ws() {
	for c.i < len(c.b) && (c.b[c.i] == ' ' || c.b[c.i] == '\t' || c.b[c.i] == '\n' || c.b[c.i] == '\r') {
		c.i++
	}
}

func (c *jsonChecker) value(path string, depth int) error {
	c.ws()
	switch c.b[c.i] {
	case '{', '[':
		if depth >= MaxJSONDepth {
			return &UnstorableError{Field: path, Problem: fmt.Sprintf("nests deeper than %d levels", MaxJSONDepth)}
		}
		obj := c.b[c.i] == '{'
		c.i++
		for n := 0; ; n++ {
			c.ws()
			if c.b[c.i] == '}' || c.b[c.i] == ']' {
				c.i++
				return nil
			}
			if c.b[c.i] == ',' {
				c.i++
				c.ws()
			}
			elem := path + "[" + strconv.Itoa(n) + "]"
			if obj {
				start := c.i
				if err := c.str(path + " (an object key)"); err != nil {
					return err
				}
				var key string
				_ = json.Unmarshal(c.b[start:c.i], &key)
				elem = path + "." + truncateText(key, 64)
				c.ws()
				c.i++ // ':'
			}
			if err := c.value(elem, depth+1); err != nil {
				return err
			}
		}
	case '"':
		return c.str(path)
	case 't', 'n':
		c.i += 4
	case 'f':
		c.i += 5
	default:
		start := c.i
		for c.i < len(c.b) && strings.IndexByte("+-0123456789.eE", c.b[c.i]) >= 0 {
			c.i++
		}
		if !numericHolds(c.b[start:c.i]) {
			return &UnstorableError{Field: path, Problem: fmt.Sprintf("the number %s is out of the range PostgreSQL can store", truncateText(string(c.b[start:c.i]), 32))}
		}
	}
	return nil
}

// str checks the string starting at c.i and moves past it.
func (c *jsonChecker) str(path string) error {
	c.i++ // opening quote
	for {
		switch c.b[c.i] {
		case '"':
			c.i++
			return nil
		case '\\':
			if c.b[c.i+1] != 'u' {
				c.i += 2
				continue
			}
			r := hex4(c.b[c.i+2 : c.i+6])
			c.i += 6
			switch {
			case r == 0:
				return &UnstorableError{Field: path, Problem: `contains a NUL character (\u0000), which cannot be stored`}
			case r >= 0xDC00 && r < 0xE000:
				return &UnstorableError{Field: path, Problem: fmt.Sprintf(`contains a lone UTF-16 low surrogate escape (\u%04x)`, r)}
			case r >= 0xD800 && r < 0xDC00:
				// A high surrogate must be followed by a low one.
				if c.i+6 > len(c.b) || c.b[c.i] != '\\' || c.b[c.i+1] != 'u' {
					return &UnstorableError{Field: path, Problem: fmt.Sprintf(`contains a lone UTF-16 high surrogate escape (\u%04x)`, r)}
				}
				if lo := hex4(c.b[c.i+2 : c.i+6]); lo < 0xDC00 || lo >= 0xE000 {
					return &UnstorableError{Field: path, Problem: fmt.Sprintf(`contains a lone UTF-16 high surrogate escape (\u%04x)`, r)}
				}
				c.i += 6
			}
		default:
			c.i++
		}
	}
}

func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(n)
}

// numericHolds reports whether PostgreSQL's numeric accepts num, a valid
// JSON number, following its input parser (set_var_from_str): the exponent
// must be below 2^30 in magnitude, the display scale (fraction digits minus
// the exponent) at most 16383, and the leading significant digit's decimal
// exponent at most 131071. Zero passes at any weight, not at any scale.
func numericHolds(num []byte) bool {
	s := strings.TrimPrefix(string(num), "-")
	mant, expText, hasExp := strings.Cut(strings.ToLower(s), "e")
	exp := int64(0)
	if hasExp {
		expText = strings.TrimPrefix(expText, "+")
		neg := strings.HasPrefix(expText, "-")
		digits := strings.TrimLeft(strings.TrimPrefix(expText, "-"), "0")
		if len(digits) > 10 {
			return false
		}
		e, _ := strconv.ParseInt(cmp.Or(digits, "0"), 10, 64)
		if e >= maxNumericExp {
			return false
		}
		if neg {
			e = -e
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if int64(len(frac))-exp > maxNumericScale {
		return false
	}
	digits := intPart + frac
	lead := strings.IndexFunc(digits, func(r rune) bool { return r != '0' })
	if lead < 0 {
		return true // zero
	}
	weight := int64(len(intPart)-1-lead) + exp
	return weight <= maxNumericWeight
}

// truncateText cuts s to at most n bytes, on a rune boundary, marking the
// cut: for error messages that quote input.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
