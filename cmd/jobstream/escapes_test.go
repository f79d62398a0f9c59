package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/client"
)

// TestVisible: newline and tab pass, every other C0 control, DEL, every C1
// control and every byte of invalid UTF-8 is escaped; the rest of Unicode
// (U+FFFD included) passes as is.
func TestVisible(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                       "",
		"plain text\n\tindented":                 "plain text\n\tindented",
		"é 日本 🙂 \ufffd \u00a0 \u2028":            "é 日本 🙂 \ufffd \u00a0 \u2028",
		"\x1b]0;title\x07":                       `\x1b]0;title\x07`,
		"\x1b[2J\x1b[H":                          `\x1b[2J\x1b[H`,
		"\x1b]8;;http://x/\x1b\\a\x1b]8;;\x1b\\": `\x1b]8;;http://x/\x1b\a\x1b]8;;\x1b\`,
		"\x1b]52;c;aGk=\x07":                     `\x1b]52;c;aGk=\x07`,
		"ok\rno\b\b":                             `ok\x0dno\x08\x08`,
		"\x00\x01\x1f\x7f":                       `\x00\x01\x1f\x7f`,
		"\u0080\u0085\u009b31m\u009f":            `\u0080\u0085\u009b31m\u009f`,
		"\u00a0\u00ff":                           "\u00a0\u00ff", // past C1: printable
		// Invalid UTF-8: a lone C1 byte (CSI on an 8-bit terminal), a
		// truncated sequence, an overlong encoding of CSI, a surrogate.
		"a\x9b31mb":         `a\x9b31mb`,
		"\xc2":              `\xc2`,
		"\xc2\x1b":          `\xc2\x1b`,
		"\xc0\x9b":          `\xc0\x9b`,
		"\xed\xa0\x80":      `\xed\xa0\x80`,
		"\xff\xfe text":     `\xff\xfe text`,
		"\xe2\x82":          `\xe2\x82`,
		"done \xe2\x82\xac": "done €",
	} {
		if got := visible(in); got != want {
			t.Errorf("visible(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExplainEscapes: an error quoting the server shows its control
// characters escaped, and still unwraps to the client's error.
func TestExplainEscapes(t *testing.T) {
	t.Parallel()
	c := &client.Client{BaseURL: "http://127.0.0.1:1"}
	apiErr := &client.Error{Status: 500, Code: "internal", Message: "upstream said \x1b]0;pwned\x07\r\u009b2J"}
	err := explain(context.Background(), c, apiErr)
	if want := `500 internal: upstream said \x1b]0;pwned\x07\x0d\u009b2J`; err == nil || err.Error() != want {
		t.Errorf("explain = %q, want %q", err, want)
	}
	var got *client.Error
	if !errors.As(err, &got) || got != apiErr {
		t.Errorf("explain's error does not unwrap to the client's: %v", err)
	}
	if strings.ContainsAny(err.Error(), "\x1b\x07\r\u009b") {
		t.Errorf("raw control characters in %q", err)
	}
	if explain(context.Background(), c, nil) != nil {
		t.Error("explain(nil) is not nil")
	}
}
