package responsesapi

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTruncateKeepsUTF8: input quoted in an error message is cut on a rune
// boundary, so the message never carries half a character.
func TestTruncateKeepsUTF8(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("é", 50) // 2 bytes each
	got := truncate(in, 81)
	if !utf8.ValidString(got) {
		t.Fatalf("truncate cut inside a character: %q", got)
	}
	if !strings.HasSuffix(got, "...") || len(got) > 81+len("...") {
		t.Errorf("truncate = %q, want at most 81 bytes plus the marker", got)
	}
}
