package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
)

const askAbout = `Submit a prompt as a job and print the answer as it streams in. The server is
--url (env JOBSTREAM_URL, default http://localhost:8080); credentials come from
JOBSTREAM_ACCESS_KEY and JOBSTREAM_SECRET_KEY when the server needs them.
--param k=v sets a request param; v is parsed as JSON when it is valid JSON
(numbers, true, [..], {..}) and taken as a string otherwise, e.g.
  jobstream ask "hello" --param sim_tokens_per_second=0 --param temperature=0.2`

// paramFlags collects repeated --param k=v flags.
type paramFlags map[string]json.RawMessage

func (p paramFlags) String() string { return "" }

func (p paramFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want k=v, got %q", s)
	}
	if json.Valid([]byte(v)) {
		p[k] = json.RawMessage(v)
	} else {
		b, _ := json.Marshal(v)
		p[k] = b
	}
	return nil
}

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

func cmdAsk(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ask", `"prompt" [flags]`, askAbout)
	c := clientFlags(e, fs)
	eng := fs.String("engine", "sim", "engine id")
	room := fs.String("room", "", "room (conversation) id")
	history := fs.Bool("history", false, "send the room's earlier turns as history")
	params := paramFlags{}
	fs.Var(params, "param", "request param k=v (repeatable)")
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		return usagef(`ask needs exactly one prompt argument, e.g. jobstream ask "write me a paragraph about soccer"`)
	}
	job, err := c.Submit(ctx, jobsapi.CreateJobRequest{Engine: *eng, Command: pos[0], Params: params, RoomID: *room, UseHistory: *history})
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	fmt.Fprintf(e.stderr, "job %s\n", job.ID)
	return follow(ctx, e, c, job.ID.String(), 0, false)
}

// follow prints a job's stream: text as it arrives (or raw chunks as JSON
// lines), tool calls assembled at the end, then the outcome.
func follow(ctx context.Context, e *env, c *client.Client, jobID string, offset int, raw bool) error {
	id, err := httpapi.ParseJobID(jobID)
	if err != nil {
		return usagef("%v", err)
	}
	var tools toolAssembler
	start := time.Now()
	end, err := c.Follow(ctx, id, offset, func(ch store.Chunk) error {
		if raw {
			b, _ := json.Marshal(ch)
			_, err := fmt.Fprintln(e.stdout, string(b))
			return err
		}
		switch ch.StreamType {
		case "content":
			var d struct {
				Content string `json:"content"`
			}
			_ = json.Unmarshal(ch.Data, &d)
			_, err := fmt.Fprint(e.stdout, d.Content)
			return err
		case "tool":
			tools.add(ch.Data)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !raw {
		fmt.Fprintln(e.stdout)
		for _, call := range tools.calls() {
			fmt.Fprintf(e.stdout, "[tool call %s] %s(%s)\n", call.id, call.name, call.args)
		}
	}
	fmt.Fprintf(e.stderr, "[%s: %s in %s]\n", end.Status, end.FinishReason, time.Since(start).Round(time.Millisecond))
	if end.Status != store.StatusCompleted {
		if job, err := c.Get(ctx, id); err == nil && len(job.Error) > 0 {
			fmt.Fprintf(e.stderr, "error: %s\n", job.Error)
		}
		return errSilent
	}
	return nil
}

type toolCall struct{ id, name, args string }

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
