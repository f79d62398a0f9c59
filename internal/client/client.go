// Package client is a Go client of jobstream's native /v1 API, used by the
// CLI (ask, jobs, tail), the benchmark and end-to-end tests.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
)

// Client talks to one jobstream server.
type Client struct {
	// BaseURL is the server, e.g. http://localhost:8080.
	BaseURL string
	// HTTP defaults to a client without an overall timeout (streams are
	// long); per-call contexts bound each request.
	HTTP *http.Client
	// AccessKey and SecretKey are sent as HTTP Basic credentials when set.
	AccessKey, SecretKey string
}

// Error is an error answer from the server.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	// Servers before the fix sent messages already starting with the code
	// ("unauthenticated: unauthenticated: ..."): say it once.
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, strings.TrimPrefix(e.Message, e.Code+": "))
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.AccessKey != "" {
		req.SetBasicAuth(c.AccessKey, c.SecretKey)
	}
	return req, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return readError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

func readError(resp *http.Response) error {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) == nil && body.Error.Message != "" {
		return &Error{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message}
	}
	return &Error{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(b))}
}

// Submit creates a job.
func (c *Client) Submit(ctx context.Context, req jobsapi.CreateJobRequest) (jobsapi.Job, error) {
	var j jobsapi.Job
	err := c.do(ctx, http.MethodPost, "/v1/jobs", req, &j)
	return j, err
}

// ListParams are the query of GET /v1/jobs. Zero values are left out.
type ListParams struct {
	Status, Engine string
	Limit          int
	Before         *uuid.UUID
}

// List returns the key's jobs, newest first.
func (c *Client) List(ctx context.Context, p ListParams) (jobsapi.JobList, error) {
	q := url.Values{}
	if p.Status != "" {
		q.Set("status", p.Status)
	}
	if p.Engine != "" {
		q.Set("engine", p.Engine)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Before != nil {
		q.Set("before", p.Before.String())
	}
	var l jobsapi.JobList
	err := c.do(ctx, http.MethodGet, "/v1/jobs?"+q.Encode(), nil, &l)
	return l, err
}

// Engines returns the engines the server offers.
func (c *Client) Engines(ctx context.Context) ([]engine.Info, error) {
	var body struct {
		Engines []engine.Info `json:"engines"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/engines", nil, &body)
	return body.Engines, err
}

// Get returns a job.
func (c *Client) Get(ctx context.Context, id uuid.UUID) (jobsapi.Job, error) {
	var j jobsapi.Job
	err := c.do(ctx, http.MethodGet, "/v1/jobs/"+id.String(), nil, &j)
	return j, err
}

// Cancel asks for a job's cancellation.
func (c *Client) Cancel(ctx context.Context, id uuid.UUID) (jobsapi.Job, error) {
	var j jobsapi.Job
	err := c.do(ctx, http.MethodPost, "/v1/jobs/"+id.String()+"/cancel", nil, &j)
	return j, err
}

// Transcript returns a job's assembled output.
func (c *Client) Transcript(ctx context.Context, id uuid.UUID) (jobsapi.TranscriptResponse, error) {
	var t jobsapi.TranscriptResponse
	err := c.do(ctx, http.MethodGet, "/v1/jobs/"+id.String()+"/transcript", nil, &t)
	return t, err
}

// ChunksParams are the query of GET /v1/jobs/{id}/chunks.
type ChunksParams struct {
	Offset  int
	Wait    time.Duration
	MinWait time.Duration
	Limit   int
}

// Chunks reads (long-polls) a job's chunks.
func (c *Client) Chunks(ctx context.Context, id uuid.UUID, p ChunksParams) (jobsapi.ChunkPage, error) {
	q := url.Values{}
	q.Set("offset", strconv.Itoa(p.Offset))
	if p.Wait > 0 {
		q.Set("wait", strconv.FormatFloat(p.Wait.Seconds(), 'f', -1, 64))
	}
	if p.MinWait > 0 {
		q.Set("min_wait", strconv.FormatFloat(p.MinWait.Seconds(), 'f', -1, 64))
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var page jobsapi.ChunkPage
	err := c.do(ctx, http.MethodGet, "/v1/jobs/"+id.String()+"/chunks?"+q.Encode(), nil, &page)
	return page, err
}

// End is the final event of a job's SSE stream.
type End struct {
	Status       string `json:"status"`
	FinishReason string `json:"finish_reason"`
	NextOffset   int    `json:"next_offset"`
}

// Follow streams a job's chunks from offset over SSE, calling fn for each in
// order, until the job ends. A dropped connection is resumed with
// Last-Event-ID (up to a few times in a row), so fn sees every chunk once.
func (c *Client) Follow(ctx context.Context, id uuid.UUID, offset int, fn func(store.Chunk) error) (End, error) {
	next := offset
	failures := 0
	for {
		end, done, err := c.followOnce(ctx, id, offset, &next, fn)
		if done || ctx.Err() != nil {
			return end, err
		}
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Status < 500 {
			return End{}, err
		}
		if next > offset {
			// The connection made progress before it dropped: only
			// drops in a row count toward giving up, so a long stream
			// survives any number of occasional ones.
			failures = 0
		}
		failures++
		if failures > 5 {
			return End{}, fmt.Errorf("follow job %s: %w", id, err)
		}
		t := time.NewTimer(time.Duration(failures) * 200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return End{}, ctx.Err()
		case <-t.C:
		}
		offset = next
	}
}

func (c *Client) followOnce(ctx context.Context, id uuid.UUID, offset int, next *int, fn func(store.Chunk) error) (End, bool, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/jobs/"+id.String()+"/events?offset="+strconv.Itoa(offset), nil)
	if err != nil {
		return End{}, true, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return End{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return End{}, false, readError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			switch event {
			case "chunk":
				var ch store.Chunk
				if err := json.Unmarshal([]byte(data), &ch); err != nil {
					return End{}, true, fmt.Errorf("decode chunk event: %w", err)
				}
				if ch.Seq >= *next {
					if err := fn(ch); err != nil {
						return End{}, true, err
					}
					*next = ch.Seq + 1
				}
			case "end":
				var end End
				if err := json.Unmarshal([]byte(data), &end); err != nil {
					return End{}, true, fmt.Errorf("decode end event: %w", err)
				}
				return end, true, nil
			case "error":
				return End{}, false, fmt.Errorf("server: %s", data)
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	if err := sc.Err(); err != nil {
		return End{}, false, err
	}
	return End{}, false, io.ErrUnexpectedEOF
}
