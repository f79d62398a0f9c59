package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
)

// pgAccepts reports whether PostgreSQL's jsonb takes raw.
func pgAccepts(t testing.TB, pool *pgxpool.Pool, raw []byte) (bool, string) {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(), `SELECT length(convert_from($1::bytea, 'UTF8')::jsonb::text)`, raw).Scan(&n)
	if err != nil {
		return false, err.Error()
	}
	return true, ""
}

// jsonCases are the classes of JSON that jsonb refuses, and their
// neighbours that it accepts.
var jsonCases = []struct {
	raw string
	ok  bool
}{
	{`{"a":[1,2.5,-3e10,"x",true,false,null]}`, true},
	{`"\ud800"`, false},
	{`"\udc00"`, false},
	{`"\ud800x"`, false},
	{`"\ud800\ud800"`, false},
	{`"\ud800\u0041"`, false},
	{`"\ud83d\ude00"`, true},
	{`"\udbff\udfff"`, true},
	{`"\\ud800"`, true},
	{`"\u0000"`, false},
	{`"a\\u0000"`, true},
	{`{"\u0000":1}`, false},
	{`{"k\u0000":1}`, false},
	{`{"\ud800":1}`, false},
	{`"\uffff"`, true},
	{`1e999999`, false},
	{`-1e999999`, false},
	{`1e131071`, true},
	{`1e131072`, false},
	{`123456789e131063`, true},
	{`1234567890e131063`, false},
	{`1e-16383`, true},
	{`1e-16384`, false},
	{`1.5e-16383`, false},
	{`0e999999`, true},
	{`0.0e-99999`, false},
	{`0e-16383`, true},
	{`0e-16384`, false},
	{`1e1073741822`, false},
	{`0e1073741822`, true},
	{`0e1073741823`, false},
	{`0e-1073741823`, false},
	{`1e+0000000000000000000001`, true},
	{`[1E+5, 0.000001e-16377, 0.000001e-16378]`, false},
	{`"` + strings.Repeat("0", 20000) + `"`, true},
	{`0.` + strings.Repeat("0", 16383), true},
	{`0.` + strings.Repeat("0", 16384), false},
	{strings.Repeat("[", 512) + strings.Repeat("]", 512), true},
	{strings.Repeat("[", 513) + strings.Repeat("]", 513), false}, // ours, not jsonb's
	{`{"a":{"b":[0,{"c":"\ud800"}]}}`, false},
	{"\"\xff\"", false},
	{`{"a" : [ 1 , 1e999999 ] }`, false},
}

// TestCheckJSON: CheckJSON refuses exactly what jsonb refuses (beyond our
// own nesting bound), naming the place.
func TestCheckJSON(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	for _, tc := range jsonCases {
		err := store.CheckJSON("params.x", []byte(tc.raw))
		if (err == nil) != tc.ok {
			t.Errorf("CheckJSON(%.80s) = %v, want ok=%v", tc.raw, err, tc.ok)
		}
		if err != nil && !errors.Is(err, store.ErrUnstorable) {
			t.Errorf("CheckJSON(%.80s) = %v, not ErrUnstorable", tc.raw, err)
		}
		if strings.Count(tc.raw, "[") > store.MaxJSONDepth {
			continue
		}
		if got, msg := pgAccepts(t, pool, []byte(tc.raw)); got != tc.ok {
			t.Errorf("jsonb of %.80s: accepted=%v (%s), the case says %v", tc.raw, got, msg, tc.ok)
		}
	}
	err := store.CheckJSON("params.x", []byte(`{"a":{"b":[0,{"c":"\ud800"}]}}`))
	if want := `params.x.a.b[1].c: contains a lone UTF-16 high surrogate escape (\ud800)`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

// FuzzCheckJSON: for any valid JSON, CheckJSON accepts it exactly when
// PostgreSQL's jsonb does (within MaxJSONDepth).
func FuzzCheckJSON(f *testing.F) {
	for _, tc := range jsonCases {
		f.Add(tc.raw)
	}
	pool := dbtest.Pool(f)
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) || strings.Count(raw, "[")+strings.Count(raw, "{") > store.MaxJSONDepth {
			t.Skip()
		}
		err := store.CheckJSON("v", []byte(raw))
		got, msg := pgAccepts(t, pool, []byte(raw))
		if got != (err == nil) {
			t.Fatalf("%q: CheckJSON says %v, jsonb accepted=%v (%s)", raw, err, got, msg)
		}
	})
}

// TestSubmitUnstorable: Submit refuses what PostgreSQL would, naming the
// field, and writes nothing (not even the job of a pixel whose metadata is
// bad).
func TestSubmitUnstorable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := "unstorable-" + uuid.NewString()
	for name, tc := range map[string]struct {
		p     store.SubmitParams
		field string
	}{
		"CommandNUL":    {store.SubmitParams{Request: store.Request{Command: "a\x00b"}}, "command"},
		"CommandUTF8":   {store.SubmitParams{Request: store.Request{Command: "a\xffb"}}, "command"},
		"RoomNUL":       {store.SubmitParams{RoomID: "\x00", Request: store.Request{Command: "x"}}, "room_id"},
		"Surrogate":     {store.SubmitParams{Request: store.Request{Command: "x", Params: map[string]json.RawMessage{"p": json.RawMessage(`"\ud800"`)}}}, "params.p"},
		"KeyNUL":        {store.SubmitParams{Request: store.Request{Command: "x", Params: map[string]json.RawMessage{"a\x00": json.RawMessage(`1`)}}}, `params key "a\x00"`},
		"NestedKeyNUL":  {store.SubmitParams{Request: store.Request{Command: "x", Params: map[string]json.RawMessage{"p": json.RawMessage(`{"\u0000":1}`)}}}, "params.p (an object key)"},
		"Number":        {store.SubmitParams{Request: store.Request{Command: "x", Params: map[string]json.RawMessage{"t": json.RawMessage(`1e999999`)}}}, "params.t"},
		"Messages":      {store.SubmitParams{Request: store.Request{Messages: json.RawMessage(`[{"role":"user","content":"\udc00"}]`)}}, "messages[0].content"},
		"PixelInsight":  {store.SubmitParams{Request: store.Request{Command: "x"}, Pixel: &store.PixelJob{InsightID: "i\x00"}}, "insightId"},
		"PixelExprUTF8": {store.SubmitParams{Request: store.Request{Command: "x"}, Pixel: &store.PixelJob{InsightID: "i", Expression: "\xc3"}}, "expression"},
	} {
		tc.p.Tenant, tc.p.Engine = tenant, "sim"
		_, err := s.Submit(ctx, tc.p)
		var ue *store.UnstorableError
		if !errors.As(err, &ue) || ue.Field != tc.field {
			t.Errorf("%s: Submit = %v, want an UnstorableError on %s", name, err, tc.field)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE tenant = $1`, tenant).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d jobs stored (%v), want none", n, err)
	}

	// A good pixel job is stored with its metadata, in one go.
	job, err := s.Submit(ctx, store.SubmitParams{Tenant: tenant, Engine: "sim", Request: store.Request{Command: "x"},
		Pixel: &store.PixelJob{InsightID: "ins", Expression: "LLM()", Sync: true}})
	if err != nil {
		t.Fatal(err)
	}
	if pj, err := s.PixelJobGet(ctx, tenant, job.ID); err != nil || pj.InsightID != "ins" || !pj.Sync {
		t.Fatalf("pixel job = %+v, %v", pj, err)
	}
}
