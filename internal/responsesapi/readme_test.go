package responsesapi_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// readmeGoExample is the README's Go example ("Using an OpenAI SDK"), with
// the base URL, the key and stdout as parameters.
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
