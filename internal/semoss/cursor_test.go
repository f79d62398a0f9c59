package semoss_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/semoss"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestCursorRedelivery is the attack of jobstream issue 18 against a real
// `jobstream serve`: a session (a cookie jar) reads a 3,002-chunk job in
// cursor mode, one of its polls' answers does not reach it, and it polls
// on to the end. It must still receive every chunk exactly once, in order.
// Before the fix the cursor moved when a page was handed out, and the
// session received 2,002 chunks: the lost answer's page of 1,000 was gone.
func TestCursorRedelivery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// drop reads part of the raw answer from conn, then drops it.
		drop func(t *testing.T, conn net.Conn)
	}{
		// The tester's client: 100 bytes read, then the connection
		// dropped, while the server may still be writing.
		{"DroppedAfter100Bytes", func(t *testing.T, conn net.Conn) {
			if _, err := io.ReadFull(conn, make([]byte, 100)); err != nil {
				t.Fatalf("read 100 bytes: %v", err)
			}
		}},
		// A client that dies with the last byte of the answer unread:
		// the whole answer reached it, so the server wrote it completely
		// and only the connection's reset says it was not read.
		{"ResetWithAnswerWritten", func(t *testing.T, conn net.Conn) {
			total := answerLength(t, conn)
			t.Logf("answer of %d bytes, all but its last byte read", total)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			srv := e.serve()
			m := newMonolith(t, srv.URL, nil)
			m.login(e.key("reader"))
			jobID := m.runPixelAsync(streamExpr(3000, 0))
			all := m.allChunks(jobID) // statelessly, with offsets: the job has ended
			if len(all) != 3002 {
				t.Fatalf("the job has %d chunks, want 3002", len(all))
			}

			conn := rawPoll(t, m, jobID)
			tc.drop(t, conn)
			if err := conn.Close(); err != nil {
				t.Fatal(err)
			}

			got := pollToEnd(m, jobID)
			if len(got) != len(all) || !slices.Equal(keys(got), keys(all)) {
				t.Fatalf("after a dropped answer the session received %d chunks, want all %d exactly once in order", len(got), len(all))
			}
		})
	}
}

// rawPoll sends m's pixelJobStreaming poll of jobID, with m's session
// cookie, on a connection of its own, and returns the connection unread.
func rawPoll(t *testing.T, m *monolith, jobID string) net.Conn {
	t.Helper()
	u := mustURL(t, m.base+"/engine/pixelJobStreaming")
	var cookies []string
	for _, c := range m.client.Jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	if len(cookies) == 0 {
		t.Fatal("no session cookie")
	}
	form := url.Values{"jobId": {jobID}}.Encode()
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
		u.Path, u.Host, strings.Join(cookies, "; "), len(form), form)
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	return conn
}

// answerLength reads an HTTP answer from conn up to, not including, its
// last byte, and returns its length. It never reads past what it returns,
// so that the last byte stays in the socket. The answer has a
// Content-Length, or is chunked (as pixelJobStreaming's were before).
func answerLength(t *testing.T, conn net.Conn) int {
	t.Helper()
	r := &countingReader{r: conn}
	var (
		length  = -1
		chunked bool
	)
	status := readLine(t, r)
	for {
		line := readLine(t, r)
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(strings.ToLower(line), ":")
		switch strings.TrimSpace(k) {
		case "content-length":
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		case "transfer-encoding":
			chunked = strings.TrimSpace(v) == "chunked"
		}
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200 ") || (length < 1000 && !chunked) {
		t.Fatalf("answer %q: want a 200 with a page", status)
	}
	if !chunked {
		readN(t, r, length-1)
		return r.n + 1
	}
	for {
		size, err := strconv.ParseInt(readLine(t, r), 16, 64)
		if err != nil {
			t.Fatalf("chunk size: %v", err)
		}
		if size == 0 {
			readN(t, r, 1) // the final CRLF's CR
			return r.n + 1
		}
		readN(t, r, int(size))
		readLine(t, r)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// readLine reads one CRLF-terminated line a byte at a time.
func readLine(t *testing.T, r io.Reader) string {
	t.Helper()
	var line []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatalf("read the answer: %v", err)
		}
		line = append(line, b[0])
	}
	return string(line[:len(line)-2])
}

func readN(t *testing.T, r io.Reader, n int) {
	t.Helper()
	if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
		t.Fatalf("read the answer: %v", err)
	}
}

// failingWriter is a connection that dies after n bytes of the answer.
type failingWriter struct {
	header http.Header
	n      int
	body   bytes.Buffer
}

func (w *failingWriter) Header() http.Header { return w.header }
func (w *failingWriter) WriteHeader(int)     {}
func (w *failingWriter) Write(p []byte) (int, error) {
	if left := w.n - w.body.Len(); len(p) > left {
		w.body.Write(p[:max(left, 0)])
		return max(left, 0), errors.New("connection reset by peer")
	}
	return w.body.Write(p)
}

// sessionAuth authenticates every request as one SEMOSS session.
type sessionAuth httpapi.Principal

func (a sessionAuth) Authenticate(*http.Request) (httpapi.Principal, error) {
	return httpapi.Principal(a), nil
}

// TestCursorServerFailsMidWrite: a poll whose answer fails half-written (the
// connection dies under the server) leaves its page to the session's next
// poll, which gets the same chunks; once an answer is written whole, the
// poll after it goes on. Before the fix the next poll got nothing.
func TestCursorServerFailsMidWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New(pool)
	hub := notify.NewHub(store.ParseIDs)
	testserver.StartListener(t, dbtest.URL(t), "", hub, nil)
	tenant := testserver.Tenant(t)
	hash := make([]byte, 32)
	rand.Read(hash)
	sess, err := st.SessionCreate(ctx, hash, nil, "", tenant, time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	api := server.NewAPI(server.APIDeps{
		Store: st, Reader: stream.NewReader(st, hub, time.Hour), Engines: semossEngines(),
		Auth: sessionAuth{Tenant: tenant, SessionID: sess.ID.String()},
	})

	// A finished job of 41 chunks.
	l := testserver.RunningJob(t, pool, tenant, "w1")
	var owner string
	if err := pool.QueryRow(ctx, `SELECT lease_owner FROM jobs WHERE id = $1`, l.JobID).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	var chunks []store.NewChunk
	for i := range 40 {
		chunks = append(chunks, testserver.Content(l, i, fmt.Sprintf("w%d ", i)))
	}
	chunks = append(chunks, testserver.FinishChunk(l, 40, "stop"))
	fin := store.Finish{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}
	if _, err := st.WriteBatch(ctx, owner, chunks, []store.Finish{fin}); err != nil {
		t.Fatal(err)
	}

	poll := func(w http.ResponseWriter) {
		form := url.Values{"jobId": {l.JobID.String()}, "wait": {"0"}}.Encode()
		req := httptest.NewRequest(http.MethodPost, "/Monolith/api/engine/pixelJobStreaming", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		api.ServeHTTP(w, req)
	}
	decode := func(rec *httptest.ResponseRecorder) semoss.StreamingResponse {
		t.Helper()
		var out semoss.StreamingResponse
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			t.Fatalf("poll: %d %.300s", rec.Code, rec.Body.Bytes())
		}
		return out
	}

	for _, cut := range []int{0, 200} {
		fw := &failingWriter{header: http.Header{}, n: cut}
		poll(fw)
		if fw.body.Len() > cut {
			t.Fatalf("the failing answer took %d bytes, more than %d", fw.body.Len(), cut)
		}
	}
	rec := httptest.NewRecorder()
	poll(rec)
	got := decode(rec)
	if len(got.Message) != 41 || got.Status != semoss.SemossProgressComplete || rec.Header().Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
		t.Fatalf("after two answers failed mid-write: %d chunks, %s, Content-Length %q; want all 41, ProgressComplete, the body's length",
			len(got.Message), got.Status, rec.Header().Get("Content-Length"))
	}
	// That answer was written whole: the next poll has nothing left.
	rec = httptest.NewRecorder()
	poll(rec)
	if got := decode(rec); len(got.Message) != 0 || got.Status != semoss.SemossProgressComplete {
		t.Fatalf("after a whole answer: %d chunks, %s; want none, ProgressComplete", len(got.Message), got.Status)
	}
}
