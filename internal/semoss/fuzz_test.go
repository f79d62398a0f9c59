package semoss

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/httpapi"
)

// FuzzSemossForm checks that decoding a SEMOSS request (form-encoded,
// JSON, multipart, with a query string) and reading its jobId, wait and
// offset fields never panics, and that every rejection is a 4xx in
// SEMOSS's error shape.
func FuzzSemossForm(f *testing.F) {
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("jobId", "01a20a47-51dc-78c9-b5dd-e98b17b32081")
	mw.WriteField("offset", "3")
	mw.Close()
	for _, s := range []struct{ ct, body, query string }{
		{"application/x-www-form-urlencoded", "jobId=01a20a47-51dc-78c9-b5dd-e98b17b32081&wait=0.5&offset=2", ""},
		{"application/x-www-form-urlencoded", "expression=LLM(engine%3D%22sim%22%2C+command%3D%22hi%22)&insightId=new", "jobId=x"},
		{"application/json", `{"jobId":"01a20a47-51dc-78c9-b5dd-e98b17b32081","wait":1,"offset":null}`, ""},
		{"application/json", `{"expression": `, ""},
		{"application/json", `["not","an","object"]`, ""},
		{mw.FormDataContentType(), mp.String(), ""},
		{"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n", ""},
		{"", "jobId=%zz", "wait=%"},
		{"text/plain", "\x00\xff", "offset=-1&wait=NaN"},
	} {
		f.Add(s.ct, s.body, s.query)
	}
	f.Fuzz(func(t *testing.T, contentType, body, query string) {
		s := &Server{cfg: httpapi.Config{MaxBodyBytes: 1 << 12}.WithDefaults()}
		r := httptest.NewRequest(http.MethodPost, "/Monolith/api/engine/pixelJobStreaming", strings.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		check := func(what string, err error) {
			t.Helper()
			var se *semossError
			if !errors.As(err, &se) || se.Status < 400 || se.Status >= 500 || se.Message == "" || se.Type == "" {
				t.Fatalf("%s of %q %q (query %q): %v is not a 4xx SEMOSS error", what, contentType, body, query, err)
			}
		}
		form, err := s.semossForm(w, r)
		if err != nil {
			check("decoding", err)
			return
		}
		formJobID(form)
		if d, err := s.semossWait(form); err != nil {
			check("wait", err)
		} else if d < 0 || d > s.cfg.MaxWait {
			t.Fatalf("wait %s outside [0, %s]", d, s.cfg.MaxWait)
		}
		if _, err := httpapi.ParseOffset("offset", form.Get("offset")); err != nil {
			var ae *httpapi.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
				t.Fatalf("offset %q: %v", form.Get("offset"), err)
			}
		}
		_, _ = insightOf(form.Get("insightId"))
	})
}
