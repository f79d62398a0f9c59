package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
)

// clientFlags registers --url and returns the client it configures, with
// the key from JOBSTREAM_ACCESS_KEY and JOBSTREAM_SECRET_KEY.
func clientFlags(e *env, fs interface {
	StringVar(*string, string, string, string)
}) *client.Client {
	c := &client.Client{AccessKey: e.getenv("JOBSTREAM_ACCESS_KEY"), SecretKey: e.getenv("JOBSTREAM_SECRET_KEY")}
	def := e.getenv("JOBSTREAM_URL")
	if def == "" {
		def = "http://localhost:8080"
	}
	fs.StringVar(&c.BaseURL, "url", def, "jobstream server (env JOBSTREAM_URL)")
	return c
}

// checkKey catches, before any request, a server URL that cannot be one
// (checkServerURL), and half a key: the server could only say "invalid",
// not which half is missing.
func checkKey(c *client.Client) error {
	if err := checkServerURL("--url", c.BaseURL); err != nil {
		return err
	}
	switch {
	case c.AccessKey != "" && c.SecretKey == "":
		return errors.New("JOBSTREAM_ACCESS_KEY is set but the secret key is missing: set JOBSTREAM_SECRET_KEY to the secret key printed with it by jobstream keys create")
	case c.AccessKey == "" && c.SecretKey != "":
		return errors.New("JOBSTREAM_SECRET_KEY is set but the access key is missing: set JOBSTREAM_ACCESS_KEY to the access key (ak_...) printed with it by jobstream keys create")
	}
	return nil
}

// checkServerURL reports, as a usage error naming flag, a server URL that
// is not an absolute http or https URL with a host. Without the check,
// "--url localhost:8080" parses as the scheme "localhost" and fails with
// Go's `unsupported protocol scheme "localhost"`.
func checkServerURL(flag, raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "":
		return nil
	case raw == "":
		return usagef("%s is empty: give the server's URL, such as http://localhost:8080", flag)
	case !strings.Contains(raw, "://"):
		return usagef("%s %q has no scheme: use http://%s (or https://)", flag, raw, strings.TrimPrefix(raw, "//"))
	case err == nil && u.Scheme != "http" && u.Scheme != "https":
		return usagef("%s %q: the scheme must be http or https, not %q", flag, raw, u.Scheme)
	}
	return usagef("%s %q is not a server URL such as http://localhost:8080", flag, raw)
}

// explain turns a client error into a message that says what to do. The
// message quotes the server (and through it a provider or model), so its
// control characters are shown escaped (visible).
func explain(ctx context.Context, c *client.Client, err error) error {
	if err == nil {
		return nil
	}
	return untrustedError{explainRaw(ctx, c, err)}
}

// untrustedError is an error whose text may quote the server, a provider or
// a model: Error shows its control characters escaped (visible).
type untrustedError struct{ err error }

func (u untrustedError) Error() string { return visible(u.err.Error()) }
func (u untrustedError) Unwrap() error { return u.err }

func explainRaw(ctx context.Context, c *client.Client, err error) error {
	var apiErr *client.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized:
		if c.AccessKey == "" {
			return fmt.Errorf("the server at %s needs an API key: set JOBSTREAM_ACCESS_KEY and JOBSTREAM_SECRET_KEY "+
				"(jobstream keys create --name NAME prints a pair), or run the server with --dev", c.BaseURL)
		}
		return fmt.Errorf("the server at %s refused the API key in JOBSTREAM_ACCESS_KEY and JOBSTREAM_SECRET_KEY: %s",
			c.BaseURL, strings.TrimPrefix(apiErr.Message, apiErr.Code+": "))
	case errors.As(err, &apiErr) && apiErr.Code == "unknown_engine":
		msg := strings.TrimSuffix(apiErr.Message, " (GET /v1/engines lists them)")
		if engines, err := c.Engines(ctx); err == nil {
			ids := make([]string, len(engines))
			for i, en := range engines {
				ids[i] = en.ID
			}
			return fmt.Errorf("%s; the server at %s offers: %s (jobstream engines --url %s lists them)", msg, c.BaseURL, strings.Join(ids, ", "), c.BaseURL)
		}
		return fmt.Errorf("%s (jobstream engines --url %s lists them)", msg, c.BaseURL)
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
		return fmt.Errorf("%s (no such job on the server at %s, or not one of this key's jobs)", apiErr, c.BaseURL)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("cannot reach a jobstream server at %s (start one with jobstream serve, or point --url or JOBSTREAM_URL at one): %w", c.BaseURL, err)
	}
	return err
}

// output prints a job's chunks as they arrive: text, thinking (dimmed on a
// terminal), tool calls pretty-printed once their turn ends, all with their
// control characters shown escaped (visible); or, raw, each chunk as one
// JSON line, exactly as the server sent it.
type output struct {
	w        io.Writer
	raw      bool
	dim      bool // ANSI styles allowed
	thinking bool // inside a run of thinking
	last     byte // the last byte written, to end with a newline
	tools    toolAssembler
	firstAt  time.Time // created_at of chunk 0, when seen
}

// text writes untrusted text (the model's, the server's) with its control
// characters shown escaped (visible). Every path that prints such text in
// the readable mode goes through it.
func (o *output) text(s string) error { return o.write(visible(s)) }

// write writes jobstream's own text, its styles included, as is.
func (o *output) write(s string) error {
	if s == "" {
		return nil
	}
	o.last = s[len(s)-1]
	_, err := io.WriteString(o.w, s)
	return err
}

func (o *output) chunk(ch store.Chunk) error {
	if ch.Seq == 0 {
		o.firstAt = ch.CreatedAt
	}
	if o.raw {
		b, err := json.Marshal(ch)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.w, "%s\n", b)
		return err
	}
	var d struct {
		Content      string  `json:"content"`
		Thinking     string  `json:"thinking"`
		FinishReason *string `json:"finish_reason"`
	}
	_ = json.Unmarshal(ch.Data, &d)
	if d.FinishReason != nil {
		return o.endTurn()
	}
	switch ch.StreamType {
	case "content":
		if err := o.endThinking(); err != nil {
			return err
		}
		return o.text(d.Content)
	case "thinking":
		if !o.thinking {
			o.thinking = true
			start := "(thinking) "
			if o.dim {
				start = styleDim
			}
			if err := o.write(start); err != nil {
				return err
			}
		}
		return o.text(d.Thinking)
	case "tool":
		o.tools.add(ch.Data)
	}
	return nil
}

func (o *output) endThinking() error {
	if !o.thinking {
		return nil
	}
	o.thinking = false
	end := "\n\n"
	if o.dim {
		end = styleUndim + end
	}
	return o.write(end)
}

// endTurn ends the text with a newline and prints the turn's tool calls.
func (o *output) endTurn() error {
	if err := o.endThinking(); err != nil {
		return err
	}
	if o.last != 0 && o.last != '\n' {
		if err := o.write("\n"); err != nil {
			return err
		}
	}
	for _, call := range o.tools.calls() {
		if err := o.text(call.pretty()); err != nil {
			return err
		}
	}
	o.tools = toolAssembler{}
	return nil
}

// follow prints a job's stream from offset to its end, then a summary on
// stderr. A job that did not complete is an errSilent after its error.
func follow(ctx context.Context, e *env, c *client.Client, id uuid.UUID, offset int, raw bool) error {
	o := &output{w: e.stdout, raw: raw, dim: e.styled(e.stdout)}
	return followWith(ctx, e, c, id, offset, o, nil)
}

// followWith is follow with an output of the caller's and a hook called at
// the first chunk.
func followWith(ctx context.Context, e *env, c *client.Client, id uuid.UUID, offset int, o *output, first func()) error {
	end, err := c.Follow(ctx, id, offset, func(ch store.Chunk) error {
		if first != nil {
			first()
			first = nil
		}
		return o.chunk(ch)
	})
	if first != nil {
		first()
	}
	if err != nil {
		return err
	}
	if !o.raw {
		if err := o.endTurn(); err != nil {
			return err
		}
	}
	job, err := c.Get(ctx, id)
	if err != nil {
		fmt.Fprintln(e.stderr, visible(fmt.Sprintf("[%s: %s]", end.Status, end.FinishReason)))
		return err
	}
	// The job's record is the server's (its error often a provider's): on
	// stderr, even with --json, it is for people.
	fmt.Fprintln(e.stderr, visible(summary(job, o.firstAt)))
	if job.Status != store.StatusCompleted {
		if len(job.Error) > 0 {
			fmt.Fprintln(e.stderr, visible("error: "+string(job.Error)))
		}
		return errSilent
	}
	return nil
}

// summary describes a finished job from its own record (not from how long
// this command watched it): outcome, output tokens, run time and time to
// first token.
func summary(j jobsapi.Job, firstAt time.Time) string {
	parts := []string{fmt.Sprintf("%s: %s", j.Status, j.FinishReason)}
	var took []string
	if n, ok := outputTokens(j); ok {
		took = append(took, fmt.Sprintf("%d tokens", n))
	}
	if j.FinishedAt != nil {
		took = append(took, "in "+roundDuration(j.FinishedAt.Sub(j.CreatedAt)))
	}
	if len(took) > 0 {
		parts = append(parts, strings.Join(took, " "))
	}
	if !firstAt.IsZero() {
		parts = append(parts, "first token after "+roundDuration(firstAt.Sub(j.CreatedAt)))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func outputTokens(j jobsapi.Job) (int, bool) {
	var u struct {
		OutputTokens *int `json:"output_tokens"`
	}
	if json.Unmarshal(j.Usage, &u) != nil || u.OutputTokens == nil {
		return 0, false
	}
	return *u.OutputTokens, true
}

// roundDuration keeps two or three significant digits: 23ms, 4.98s, 2m31s.
func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

type toolCall struct{ id, name, args string }

// pretty is the call as `ask` and `tail` print it: name and id, then the
// arguments indented when they are JSON.
func (t *toolCall) pretty() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tool call %s", t.name)
	if t.id != "" {
		fmt.Fprintf(&b, " (%s)", t.id)
	}
	b.WriteString(":\n")
	var args bytes.Buffer
	switch {
	case strings.TrimSpace(t.args) == "":
		b.WriteString("  (no arguments)\n")
	case json.Indent(&args, []byte(t.args), "  ", "  ") == nil:
		b.WriteString("  ")
		b.Write(args.Bytes())
		b.WriteString("\n")
	default:
		b.WriteString("  " + t.args + "\n")
	}
	return b.String()
}

// toolAssembler joins tool-call deltas by index (the chunk format in
// internal/engine/README.md).
type toolAssembler struct{ byIndex []*toolCall }

func (t *toolAssembler) add(data json.RawMessage) {
	var d struct {
		Index    *int   `json:"index"`
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	if json.Unmarshal(data, &d) != nil || d.Index == nil || *d.Index < 0 || *d.Index > 1000 {
		return
	}
	for len(t.byIndex) <= *d.Index {
		t.byIndex = append(t.byIndex, &toolCall{})
	}
	c := t.byIndex[*d.Index]
	c.id += d.ID
	c.name += d.Function.Name
	c.args += d.Function.Arguments
}

func (t *toolAssembler) calls() []*toolCall { return t.byIndex }
