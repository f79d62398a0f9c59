package pixel

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what Parse accepts.
const (
	// MaxExprLen is the largest expression Parse reads, in bytes.
	MaxExprLen = 4 << 20
	// MaxDepth is how deeply brackets ( [ { may nest, counting the
	// pixel's own parentheses, so hostile input can't exhaust the stack.
	MaxDepth = 64
	// MaxPixels is the most pixels one expression may hold. SEMOSS clients
	// send one or two; each becomes work for the caller.
	MaxPixels = 100
)

// ErrUnsupported is wrapped by the error for a pixel that is syntactically
// fine but not one jobstream runs, e.g. `Foo(1)`.
var ErrUnsupported = errors.New("pixel: unsupported pixel")

// ErrTooMany is wrapped by the error for an expression asking for more
// than jobstream does in one request: StopPixelExecution pixels naming more
// than MaxStopIDs distinct job ids between them. Callers answer it with
// 400.
var ErrTooMany = errors.New("pixel: too many")

// MaxStopIDs caps the distinct job ids that the StopPixelExecution pixels
// of one expression (one request) name between them: each is a cancel
// transaction and an audit row. It is per expression, not per pixel, or
// MaxPixels pixels of MaxStopIDs ids each would be 10,000 cancels.
// Repeated ids count once (StopKey says which are the same); callers
// cancel each once.
const MaxStopIDs = 100

// StopKey is the form of a StopPixelExecution job id under which repeats
// are the same job: trimmed, lower case (job ids are UUIDs, whose hex
// digits may come in either case).
func StopKey(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

// maxListed caps how many unknown argument names an error lists.
const maxListed = 5

// SyntaxError is a malformed expression. Callers report it with
// operationType "INVALID_SYNTAX"; find it with errors.As.
type SyntaxError struct {
	Pos int    // byte offset of the problem in the whole expression
	Msg string // what is wrong, e.g. "unterminated <encode> block"
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("pixel: syntax error at offset %d: %s", e.Pos, e.Msg)
}

// Kind says which pixel a Pixel is.
type Kind int

const (
	KindLLM  Kind = iota + 1 // LLM(...): run a model
	KindMeta                 // META | true: the Python SDK's new-insight handshake
	KindStop                 // StopPixelExecution(id=[...]): cancel jobs
)

func (k Kind) String() string {
	switch k {
	case KindLLM:
		return "LLM"
	case KindMeta:
		return "META"
	case KindStop:
		return "StopPixelExecution"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Pixel is one parsed pixel of an expression.
type Pixel struct {
	Kind Kind
	// Expr is the pixel's own source text, trimmed, ending in ";", for the
	// pixelExpression field of its pixelReturn entry.
	Expr string
	// LLM is set when Kind is KindLLM.
	LLM *LLMCall
	// StopIDs are the job ids to cancel when Kind is KindStop; never empty.
	StopIDs []string
}

// LLMCall holds the arguments of an LLM pixel.
type LLMCall struct {
	// Engine is the engine id. Empty when absent; the caller picks a default.
	Engine string
	// Command is the user's prompt (it may be empty text). Absent only when
	// Params holds full_prompt or messages, the whole conversation.
	Command string
	// Context is the system prompt; the elements of a list are joined with
	// "\n". Empty when absent.
	Context string
	// RoomID is the conversation room. Empty when absent.
	RoomID string
	// UseHistory says whether to send the room's earlier messages. Defaults
	// to true, as in SEMOSS, whose clients send it explicitly anyway.
	UseHistory bool
	// Params are the paramValues, each a valid JSON value. Nil when absent.
	Params map[string]json.RawMessage
}

// Parse parses an expression: one or more pixels separated by ";". A
// malformed expression gives a *SyntaxError; a well-formed pixel jobstream
// doesn't run gives an error wrapping ErrUnsupported; other errors are bad
// arguments to a known pixel. Any error fails the whole expression.
func Parse(expr string) ([]Pixel, error) {
	if len(expr) > MaxExprLen {
		return nil, fmt.Errorf("pixel: expression is %d bytes, over the limit of %d", len(expr), MaxExprLen)
	}
	if err := checkText(expr); err != nil {
		return nil, err
	}
	segs, err := split(expr)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, &SyntaxError{Pos: 0, Msg: "empty expression"}
	}
	pixels := make([]Pixel, 0, len(segs))
	stops := map[string]bool{}
	for _, s := range segs {
		px, err := parsePixel(expr, s)
		if err != nil {
			return nil, err
		}
		for _, id := range px.StopIDs {
			stops[StopKey(id)] = true
		}
		if len(stops) > MaxStopIDs {
			return nil, fmt.Errorf("pixel: StopPixelExecution: the expression names more than the %d distinct job ids one request stops: %w", MaxStopIDs, ErrTooMany)
		}
		pixels = append(pixels, px)
	}
	return pixels, nil
}

// checkText rejects invalid UTF-8 and NUL bytes, which PostgreSQL text and
// jsonb columns can't hold.
func checkText(s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return &SyntaxError{Pos: i, Msg: "invalid UTF-8"}
			}
		case r == 0:
			return &SyntaxError{Pos: i, Msg: "NUL character not allowed"}
		}
	}
	return nil
}

// segment is the source of one pixel: expr[start:end], without its ";".
type segment struct{ start, end int }

// split cuts expr at each ";" outside strings, <encode> blocks and brackets,
// dropping empty statements (as in "a;;b" or a trailing ";"). It also checks
// that strings end and brackets match and nest at most MaxDepth deep, so
// parsePixel can't recurse further.
func split(expr string) ([]segment, error) {
	l := lexer{src: expr, end: len(expr)}
	var open []token // unclosed brackets
	var segs []segment
	start := 0
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		if t.kind == tokEOF {
			if len(open) > 0 {
				o := open[len(open)-1]
				return nil, &SyntaxError{Pos: o.pos, Msg: fmt.Sprintf("%q is never closed", o.text)}
			}
			return addSegment(segs, expr, start, len(expr))
		}
		if t.kind != tokPunct {
			continue
		}
		switch t.text {
		case "(", "[", "{":
			if len(open) == MaxDepth {
				return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("brackets nested more than %d deep", MaxDepth)}
			}
			open = append(open, t)
		case ")", "]", "}":
			if len(open) == 0 {
				return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %q", t.text)}
			}
			o := open[len(open)-1]
			if closer(o.text) != t.text {
				return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("%q does not close %q at offset %d", t.text, o.text, o.pos)}
			}
			open = open[:len(open)-1]
		case ";":
			if len(open) == 0 {
				if segs, err = addSegment(segs, expr, start, t.pos); err != nil {
					return nil, err
				}
				start = t.end
			}
		}
	}
}

func addSegment(segs []segment, expr string, start, end int) ([]segment, error) {
	if strings.TrimSpace(expr[start:end]) == "" {
		return segs, nil
	}
	if len(segs) == MaxPixels {
		return nil, fmt.Errorf("pixel: expression holds more than %d pixels", MaxPixels)
	}
	return append(segs, segment{start, end}), nil
}

func closer(open string) string {
	switch open {
	case "(":
		return ")"
	case "[":
		return "]"
	}
	return "}"
}

// parser reads one pixel's tokens. split has already checked the lexical
// structure, bracket matching and depth.
type parser struct {
	lx  lexer
	tok token // the current token
	ctx string
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

// expect consumes the punctuation s.
func (p *parser) expect(s, where string) error {
	if !p.tok.is(s) {
		return p.syntax("expected %q %s, found %s", s, where, p.tok)
	}
	return p.advance()
}

func (p *parser) syntax(format string, args ...any) error {
	return &SyntaxError{Pos: p.tok.pos, Msg: fmt.Sprintf(format, args...)}
}

// fail reports a bad argument value, prefixed with what is being parsed.
func (p *parser) fail(format string, args ...any) error {
	return fmt.Errorf("pixel: %s: %s", p.ctx, fmt.Sprintf(format, args...))
}

func parsePixel(expr string, s segment) (Pixel, error) {
	p := &parser{lx: lexer{src: expr, pos: s.start, end: s.end, decode: true}}
	if err := p.advance(); err != nil {
		return Pixel{}, err
	}
	name := p.tok.text
	if p.tok.kind != tokWord || !isNameStart(name) {
		return Pixel{}, p.syntax("expected a pixel name, found %s", p.tok)
	}
	px := Pixel{Expr: exprText(expr, s)}
	var err error
	switch {
	case strings.EqualFold(name, "LLM"):
		px.Kind = KindLLM
		px.LLM, err = p.llm()
	case strings.EqualFold(name, "StopPixelExecution"):
		px.Kind = KindStop
		px.StopIDs, err = p.stop()
	case strings.EqualFold(name, "META"):
		px.Kind = KindMeta
		err = p.meta(px.Expr)
	default:
		err = fmt.Errorf("%w %q", ErrUnsupported, clip(name, 60))
	}
	if err != nil {
		return Pixel{}, err
	}
	return px, nil
}

// exprText is the trimmed source of s ending in ";". When the source has
// its ";" right after it, that is a slice of expr rather than a copy.
func exprText(expr string, s segment) string {
	right := strings.TrimRightFunc(expr[s.start:s.end], unicode.IsSpace)
	text := strings.TrimLeftFunc(right, unicode.IsSpace)
	if len(right) == s.end-s.start && s.end < len(expr) {
		return expr[s.end-len(text) : s.end+1]
	}
	return text + ";"
}

// clip shortens s to about n bytes for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func isNameStart(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return r == '_' || unicode.IsLetter(r)
}

// meta accepts exactly `META | true`; other META pipelines are unsupported.
func (p *parser) meta(src string) error {
	if err := p.advance(); err != nil {
		return err
	}
	if p.tok.is("|") {
		if err := p.advance(); err != nil {
			return err
		}
		if p.tok.kind == tokWord && strings.EqualFold(p.tok.text, "true") {
			if err := p.advance(); err != nil {
				return err
			}
			if p.tok.kind == tokEOF {
				return nil
			}
		}
	}
	return fmt.Errorf("%w %q", ErrUnsupported, clip(src, 60))
}

// args parses `( name = value, ... )` up to the end of the pixel, calling
// arg for each argument with the current token at the start of its value.
// arg must consume exactly the value.
func (p *parser) args(name string, arg func(key string) error) error {
	if err := p.advance(); err != nil {
		return err
	}
	if err := p.expect("(", "after "+name); err != nil {
		return err
	}
	for !p.tok.is(")") {
		if p.tok.kind != tokWord {
			return p.syntax("expected an argument name in %s(...), found %s", name, p.tok)
		}
		key := p.tok.text
		if err := p.advance(); err != nil {
			return err
		}
		if err := p.expect("=", "after argument "+key); err != nil {
			return err
		}
		if err := arg(key); err != nil {
			return err
		}
		if p.tok.is(",") {
			if err := p.advance(); err != nil {
				return err
			}
			continue
		}
		if !p.tok.is(")") {
			return p.syntax("expected \",\" or \")\" after argument %s, found %s", key, p.tok)
		}
	}
	if err := p.advance(); err != nil {
		return err
	}
	if p.tok.kind != tokEOF {
		return p.syntax("unexpected %s after %s(...)", p.tok, name)
	}
	return nil
}

func (p *parser) llm() (*LLMCall, error) {
	call := &LLMCall{UseHistory: true}
	seen := map[string]bool{}
	hasCommand := false
	var unknown []string
	err := p.args("LLM", func(key string) error {
		if seen[key] {
			return fmt.Errorf("pixel: LLM: argument %s given twice", key)
		}
		seen[key] = true
		p.ctx = "LLM: " + key
		var err error
		switch key {
		case "engine":
			call.Engine, err = p.scalar()
		case "command":
			call.Command, err = p.scalar()
			hasCommand = true
		case "context":
			call.Context, err = p.context()
		case "roomId":
			call.RoomID, err = p.scalar()
		case "useHistory":
			call.UseHistory, err = p.boolean()
		case "paramValues":
			call.Params, err = p.params()
		case "insightId", "projectId":
			// Sent by some SEMOSS clients; the request's insightId wins.
			err = p.skip()
		case "image", "url":
			// Multimodal input: refuse it rather than answer without it.
			err = fmt.Errorf("pixel: LLM: argument %s: image and URL inputs are not supported; send text in command, or messages in paramValues", key)
		default:
			unknown = append(unknown, strconv.Quote(clip(key, 40)))
			err = p.skip()
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case len(unknown) == 1:
		return nil, fmt.Errorf("pixel: LLM: unknown argument %s", unknown[0])
	case len(unknown) > maxListed:
		// Never the whole input back: it may be megabytes of names.
		return nil, fmt.Errorf("pixel: LLM: unknown arguments %s and %d more", strings.Join(unknown[:maxListed], ", "), len(unknown)-maxListed)
	case len(unknown) > 1:
		return nil, fmt.Errorf("pixel: LLM: unknown arguments %s", strings.Join(unknown, ", "))
	case !hasCommand && !given(call.Params, "full_prompt") && !given(call.Params, "messages"):
		return nil, errors.New("pixel: LLM: missing command argument (or paramValues full_prompt or messages)")
	}
	return call, nil
}

// given reports whether params holds key with a value other than null.
func given(params map[string]json.RawMessage, key string) bool {
	v, ok := params[key]
	return ok && string(v) != "null"
}

func (p *parser) stop() ([]string, error) {
	var ids []string
	hasID := false
	err := p.args("StopPixelExecution", func(key string) error {
		if key != "id" {
			return fmt.Errorf("pixel: StopPixelExecution: unknown argument %q", clip(key, 40))
		}
		if hasID {
			return errors.New("pixel: StopPixelExecution: argument id given twice")
		}
		hasID = true
		p.ctx = "StopPixelExecution: id"
		var err error
		ids, err = p.strList()
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !hasID:
		return nil, errors.New("pixel: StopPixelExecution: missing id argument")
	case len(ids) == 0:
		return nil, errors.New("pixel: StopPixelExecution: id: no job id given")
	case len(ids) > MaxStopIDs:
		return nil, fmt.Errorf("pixel: StopPixelExecution: id: %d job ids, more than the %d one request stops: %w", len(ids), MaxStopIDs, ErrTooMany)
	}
	for _, id := range ids {
		if strings.TrimSpace(id) == "" {
			return nil, errors.New("pixel: StopPixelExecution: id: empty job id")
		}
	}
	return ids, nil
}

// str reads a string or bare word.
func (p *parser) str() (string, error) {
	switch p.tok.kind {
	case tokString:
		v := p.tok.val
		return v, p.advance()
	case tokWord:
		v := p.tok.text
		return v, p.advance()
	case tokPunct:
		if p.tok.is("[") || p.tok.is("{") {
			return "", p.fail("want a string, found %s", p.tok)
		}
	}
	return "", p.syntax("expected a value, found %s", p.tok)
}

// strList reads a string, or a list of strings.
func (p *parser) strList() ([]string, error) {
	if !p.tok.is("[") {
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	var list []string
	for !p.tok.is("]") {
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		list = append(list, s)
		if p.tok.is(",") {
			if err := p.advance(); err != nil {
				return nil, err
			}
			continue
		}
		if !p.tok.is("]") {
			return nil, p.syntax("expected \",\" or \"]\" in list, found %s", p.tok)
		}
	}
	return list, p.advance()
}

// scalar reads a string, or a list of exactly one string.
func (p *parser) scalar() (string, error) {
	list, err := p.strList()
	if err != nil {
		return "", err
	}
	if len(list) != 1 {
		return "", p.fail("want one value, found a list of %d", len(list))
	}
	return list[0], nil
}

// context reads a string, or a list of strings joined with "\n".
func (p *parser) context() (string, error) {
	list, err := p.strList()
	if err != nil {
		return "", err
	}
	return strings.Join(list, "\n"), nil
}

// boolean reads true or false, bare or quoted, in any case, possibly in a
// one-element list.
func (p *parser) boolean() (bool, error) {
	s, err := p.scalar()
	if err != nil {
		return false, err
	}
	switch {
	case strings.EqualFold(s, "true"):
		return true, nil
	case strings.EqualFold(s, "false"):
		return false, nil
	}
	return false, p.fail("want true or false, found %q", clip(s, 40))
}

// params reads paramValues: an object, a list holding one object, an empty
// list or null.
func (p *parser) params() (map[string]json.RawMessage, error) {
	if p.tok.kind == tokWord && isNull(p.tok.text) {
		return nil, p.advance()
	}
	if p.tok.is("{") {
		return p.object(2) // LLM( is depth 1
	}
	if !p.tok.is("[") {
		if p.tok.kind == tokString || p.tok.kind == tokWord {
			return nil, p.fail("want an object, found %s", p.tok)
		}
		return nil, p.syntax("expected a value, found %s", p.tok)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.is("]") {
		return nil, p.advance()
	}
	if !p.tok.is("{") {
		return nil, p.fail("want an object in the list, found %s", p.tok)
	}
	m, err := p.object(3)
	if err != nil {
		return nil, err
	}
	if p.tok.is(",") {
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if !p.tok.is("]") {
		if p.tok.is("{") {
			return nil, p.fail("want one object, found several")
		}
		return nil, p.syntax("expected \"]\" after paramValues object, found %s", p.tok)
	}
	return m, p.advance()
}

// skip reads a value of any shape and drops it.
func (p *parser) skip() error {
	_, err := p.literal(nil, 2, true)
	return err
}
