package enginetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/engine"
)

// Collect streams req through e and returns the emitted chunks as canonical
// JSON, with Stream's results.
func Collect(ctx context.Context, e engine.Engine, req engine.Request) ([]string, engine.Finish, error) {
	var got []string
	finish, err := e.Stream(ctx, req, func(c engine.Chunk) error {
		got = append(got, ChunkJSON(c))
		return nil
	})
	return got, finish, err
}

// CheckChunks fails t unless got and want hold the same chunks in the same
// order, compared as canonical JSON.
func CheckChunks(t testing.TB, got, want []string) {
	t.Helper()
	n := max(len(got), len(want))
	var diff []string
	for i := range n {
		var g, w string
		if i < len(got) {
			g = Canonical(got[i])
		}
		if i < len(want) {
			w = Canonical(want[i])
		}
		if g != w {
			diff = append(diff, fmt.Sprintf("  chunk %d:\n    got  %s\n    want %s", i, g, w))
		}
	}
	if len(diff) > 0 {
		t.Errorf("emitted chunks differ (got %d, want %d):\n%s", len(got), len(want), strings.Join(diff, "\n"))
	}
}

// CheckFixture checks what streaming f's transcript produced against f: the
// chunks, the finish or the error, and the number of requests srv received.
// A failure's message must never contain APIKey.
func CheckFixture(t testing.TB, f Fixture, srv *Server, got []string, finish engine.Finish, err error) {
	t.Helper()
	CheckChunks(t, got, f.Want)
	if f.ErrType == "" {
		if err != nil {
			t.Errorf("Stream: unexpected error: %v", err)
		}
		if finish != f.Finish {
			t.Errorf("finish = %+v, want %+v", finish, f.Finish)
		}
	} else {
		var ee *engine.Error
		switch {
		case !errors.As(err, &ee):
			t.Errorf("Stream error = %v, want an *engine.Error of type %q", err, f.ErrType)
		default:
			if ee.Type != f.ErrType {
				t.Errorf("error type = %q, want %q (message %q)", ee.Type, f.ErrType, ee.Message)
			}
			if !strings.Contains(ee.Message, f.ErrMessage) {
				t.Errorf("error message = %q, want it to contain %q", ee.Message, f.ErrMessage)
			}
			if strings.Contains(ee.Error(), APIKey) {
				t.Errorf("error %q leaks the API key", ee.Error())
			}
			if len(got) > 0 && ee.Retryable {
				t.Errorf("error after output is Retryable")
			}
		}
	}
	if n := len(srv.Requests()); n != f.Requests {
		t.Errorf("server got %d requests, want %d", n, f.Requests)
	}
}
