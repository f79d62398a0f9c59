package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseQuery checks that offset, wait and limit parsing never panics,
// and that every rejection is a 400 APIError naming the parameter.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "0", "12", "-1", "1e9", "0.5", "25s", "250ms", "NaN", "Inf", "-0", "9999999999999", "1h", "abc", "\x00", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(name string, err error) {
			if err == nil {
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, name) {
				t.Fatalf("%s(%q): error %v is not a 400 naming %s", name, s, err, name)
			}
		}
		n, err := ParseOffset("offset", s)
		check("offset", err)
		if err == nil && n < 0 {
			t.Fatalf("ParseOffset(%q) = %d", s, n)
		}
		d, err := ParseWait("wait", s, time.Second, 25*time.Second)
		check("wait", err)
		if err == nil && (d < 0 || d > 25*time.Second) {
			t.Fatalf("ParseWait(%q) = %s, outside [0, 25s]", s, d)
		}
		l, err := ParseLimit(s, 100, 1000)
		check("limit", err)
		if err == nil && (l < 1 || l > 1000) {
			t.Fatalf("ParseLimit(%q) = %d, outside [1, 1000]", s, l)
		}
		_, err = ParseJobID(s)
		check("job id", err)
	})
}
