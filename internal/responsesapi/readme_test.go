package responsesapi_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// readmeGoExample is the Go example of this package's README.md ("Using an
// OpenAI SDK"), with the base URL, the key and stdout as parameters, and the
// final Response returned; readmeGoExampleAsDocumented checks that the two
// stay the same code.
func readmeGoExample(ctx context.Context, baseURL, accessKey, secretKey string, stdout io.Writer) (*responses.Response, error) {
	client := openai.NewClient(
		option.WithBaseURL(baseURL),
		option.WithAPIKey(accessKey+":"+secretKey),
	)
	stream := client.Responses.NewStreaming(ctx, responses.ResponseNewParams{
		Model:      "sim",
		Input:      responses.ResponseNewParamsInputUnion{OfString: openai.String("Tell me a story")},
		Background: openai.Bool(true),
	})
	var id string
	var last int64
	for stream.Next() {
		ev := stream.Current()
		switch ev.Type {
		case "response.created":
			id = ev.Response.ID
		case "response.output_text.delta":
			fmt.Fprint(stdout, ev.Delta)
		}
		last = ev.SequenceNumber
		if last >= 20 {
			break // the connection drops...
		}
	}
	stream.Close()

	// ...resume after the last event seen:
	stream = client.Responses.GetStreaming(ctx, id, responses.ResponseGetParams{StartingAfter: openai.Int(last)})
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.output_text.delta" {
			fmt.Fprint(stdout, ev.Delta)
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}

	// Cancel stops the model; a second call returns the same final Response.
	resp, err := client.Responses.Cancel(ctx, id)
	return resp, err
}

func TestREADMEGoExample(t *testing.T) {
	t.Parallel()
	readmeGoExampleAsDocumented(t)
	b := setup(t, options{})
	access, secret, _ := strings.Cut(b.keyA, ":")
	var out strings.Builder
	resp, err := readmeGoExample(context.Background(), b.srv.URL+"/v1/", access, secret, &out)
	if err != nil {
		t.Fatal(err)
	}
	// The stream was read to its end before the cancel: the response
	// completed, and what was printed is its whole text.
	if resp.Status != responses.ResponseStatusCompleted || out.String() != resp.OutputText() {
		t.Fatalf("status %q; printed %q\noutput_text %q", resp.Status, out.String(), resp.OutputText())
	}
}

// readmeGoExampleAsDocumented fails the test when the Go block of README.md
// is not readmeGoExample's body, once the README's literals are replaced by
// the function's parameters (the base URL, stdout, the returned error and
// Response). Blank lines and indentation do not count.
func readmeGoExampleAsDocumented(t *testing.T) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```go\n")
	if block, _, ok = strings.Cut(block, "```"); !ok {
		t.Fatal("README.md has no ```go block")
	}
	src, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(src), "func readmeGoExample(")
	_, body, _ = strings.Cut(body, "{\n")
	body, _, _ = strings.Cut(body, "\n}\n")
	want := strings.NewReplacer(
		`"http://localhost:8080/v1/"`, "baseURL",
		"fmt.Print(", "fmt.Fprint(stdout, ",
		"return err", "return nil, err",
	).Replace(block) + "return resp, err\n"
	lines := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	w, g := lines(want), lines(body)
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			t.Fatalf("README.md's Go example and readmeGoExample differ at line %d of the example:\nREADME:   %q\nfunction: %q", i+1, wl, gl)
		}
	}
}
