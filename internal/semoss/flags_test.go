package semoss_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// `serve --csrf` turns SEMOSS's CSRF protection on: /config reports it and
// fetchCsrf hands out a token.
func TestServeCSRFFlag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"--csrf"}, true}} {
		srv := e.serve(append([]string{"--dev"}, tc.args...)...)
		resp, err := http.Get(srv.URL + "/Monolith/api/config")
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			CSRF bool `json:"csrf"`
		}
		err = json.NewDecoder(resp.Body).Decode(&cfg)
		resp.Body.Close()
		if err != nil || cfg.CSRF != tc.want {
			t.Fatalf("serve %v: /config csrf = %v (%v), want %v", tc.args, cfg.CSRF, err, tc.want)
		}
	}
}
