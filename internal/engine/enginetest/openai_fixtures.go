package enginetest

import (
	"slices"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// OpenAI Chat Completions chunks as the API streams them with
// stream_options.include_usage: every chunk carries "usage":null, and a last
// chunk with empty choices carries the usage.
const oaHead = `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_b376dfbbd5",`

// OpenAIDelta is a chunk whose first choice carries delta (a JSON object).
func OpenAIDelta(delta string) Step {
	return OpenAIData(oaHead + `"choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":null}],"usage":null}`)
}

// OpenAIFinish is the chunk that carries finish_reason, with an empty delta.
func OpenAIFinish(reason string) Step {
	return OpenAIData(oaHead + `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"` + reason + `"}],"usage":null}`)
}

// OpenAIUsage is the usage-only final chunk (empty choices).
func OpenAIUsage(usage string) Step {
	return OpenAIData(oaHead + `"choices":[],"usage":` + usage + `}`)
}

const oaUsage = `{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`

const oaUsageChunk = `{"stream_type":"usage","data":{"input_tokens":19,"output_tokens":10,"cache_read_input_tokens":0,"reasoning_tokens":0}}`

// OpenAIText is a plain text answer: "Hello, wörld!".
func OpenAIText() Response {
	return SSE(
		OpenAIDelta(`{"role":"assistant","content":"","refusal":null}`),
		OpenAIDelta(`{"content":"Hello"}`),
		OpenAIDelta(`{"content":", wörld"}`),
		OpenAIDelta(`{"content":"!"}`),
		OpenAIFinish("stop"),
		OpenAIUsage(oaUsage),
		OpenAIDone(),
	)
}

var oaTextWant = []string{
	`{"stream_type":"content","data":{"content":"Hello"}}`,
	`{"stream_type":"content","data":{"content":", wörld"}}`,
	`{"stream_type":"content","data":{"content":"!"}}`,
	oaUsageChunk,
}

// OpenAIFixtures returns the OpenAI Chat Completions scenarios.
func OpenAIFixtures() []Fixture {
	return []Fixture{
		{
			Name:      "Text",
			Responses: []Response{OpenAIText()},
			Want:      oaTextWant,
			Finish:    engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests:  1,
		},
		{
			// Two calls streamed in parallel, their deltas interleaved.
			Name: "ParallelToolCalls",
			Responses: []Response{SSE(
				OpenAIDelta(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_Dx1","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null}`),
				OpenAIDelta(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}`),
				OpenAIDelta(`{"tool_calls":[{"index":1,"id":"call_Dx2","type":"function","function":{"name":"get_time","arguments":""}}]}`),
				OpenAIDelta(`{"tool_calls":[{"index":0,"function":{"arguments":"ty\": \"Paris\"}"}}]}`),
				OpenAIDelta(`{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\": \"Europe/Paris\"}"}}]}`),
				OpenAIFinish("tool_calls"),
				OpenAIUsage(oaUsage),
				OpenAIDone(),
			)},
			Want: []string{
				`{"stream_type":"tool","data":{"index":0,"id":"call_Dx1"}}`,
				`{"stream_type":"tool","data":{"index":0,"type":"function"}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"name":"get_weather"}}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"arguments":"{\"ci"}}}`,
				`{"stream_type":"tool","data":{"index":1,"id":"call_Dx2"}}`,
				`{"stream_type":"tool","data":{"index":1,"type":"function"}}`,
				`{"stream_type":"tool","data":{"index":1,"function":{"name":"get_time"}}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"arguments":"ty\": \"Paris\"}"}}}`,
				`{"stream_type":"tool","data":{"index":1,"function":{"arguments":"{\"tz\": \"Europe/Paris\"}"}}}`,
				oaUsageChunk,
			},
			Finish:   engine.Finish{Reason: "tool_calls", Stream: engine.StreamTool},
			Requests: 1,
		},
		{
			// The bytes of 東 and of 🌧 travel in two network writes each.
			Name: "ArgumentsSplitInsideCharacter",
			Responses: []Response{SSE(slices.Concat(
				[]Step{OpenAIDelta(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_Jp1","type":"function","function":{"name":"get_weather","arguments":""}}]}`)},
				SplitInside(OpenAIDelta(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"東京"}}]}`), "東"),
				SplitInside(OpenAIDelta(`{"tool_calls":[{"index":0,"function":{"arguments":"\", \"sky\": \"🌧\"}"}}]}`), "🌧"),
				[]Step{OpenAIFinish("tool_calls"), OpenAIUsage(oaUsage), OpenAIDone()},
			)...)},
			Want: []string{
				`{"stream_type":"tool","data":{"index":0,"id":"call_Jp1"}}`,
				`{"stream_type":"tool","data":{"index":0,"type":"function"}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"name":"get_weather"}}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"arguments":"{\"city\": \"東京"}}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"arguments":"\", \"sky\": \"🌧\"}"}}}`,
				oaUsageChunk,
			},
			Finish:   engine.Finish{Reason: "tool_calls", Stream: engine.StreamTool},
			Requests: 1,
		},
		{
			// Deltas that carry nothing emit nothing.
			Name: "EmptyDeltas",
			Responses: []Response{SSE(
				OpenAIDelta(`{"role":"assistant","content":"","refusal":null}`),
				OpenAIDelta(`{}`),
				OpenAIDelta(`{"content":null}`),
				OpenAIDelta(`{"content":""}`),
				OpenAIDelta(`{"content":"ok"}`),
				OpenAIDelta(`{"content":"","tool_calls":[]}`),
				OpenAIFinish("stop"),
				OpenAIUsage(oaUsage),
				OpenAIDone(),
			)},
			Want: []string{
				`{"stream_type":"content","data":{"content":"ok"}}`,
				oaUsageChunk,
			},
			Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests: 1,
		},
		{
			// vLLM and DeepSeek stream reasoning as reasoning_content.
			Name: "ReasoningContent",
			Responses: []Response{SSE(
				OpenAIDelta(`{"role":"assistant","content":""}`),
				OpenAIDelta(`{"reasoning_content":"The user greets me."}`),
				OpenAIDelta(`{"reasoning_content":" Reply briefly."}`),
				OpenAIDelta(`{"content":"Hi!"}`),
				OpenAIFinish("stop"),
				OpenAIUsage(`{"prompt_tokens":8,"completion_tokens":12,"total_tokens":20,"completion_tokens_details":{"reasoning_tokens":9}}`),
				OpenAIDone(),
			)},
			Want: []string{
				`{"stream_type":"thinking","data":{"thinking":"The user greets me."}}`,
				`{"stream_type":"thinking","data":{"thinking":" Reply briefly."}}`,
				`{"stream_type":"content","data":{"content":"Hi!"}}`,
				`{"stream_type":"usage","data":{"input_tokens":8,"output_tokens":12,"reasoning_tokens":9}}`,
			},
			Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests: 1,
		},
		{
			// Ollama and OpenRouter stream reasoning as reasoning; a server
			// that sends both fields sends the same text twice.
			Name: "Reasoning",
			Responses: []Response{SSE(
				OpenAIDelta(`{"role":"assistant","content":"","reasoning":"Think."}`),
				OpenAIDelta(`{"content":"","reasoning":" Done.","reasoning_content":" Done."}`),
				OpenAIDelta(`{"content":"Answer."}`),
				OpenAIFinish("stop"),
				OpenAIUsage(`{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}`),
				OpenAIDone(),
			)},
			Want: []string{
				`{"stream_type":"thinking","data":{"thinking":"Think."}}`,
				`{"stream_type":"thinking","data":{"thinking":" Done."}}`,
				`{"stream_type":"content","data":{"content":"Answer."}}`,
				`{"stream_type":"usage","data":{"input_tokens":5,"output_tokens":4}}`,
			},
			Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests: 1,
		},
		{
			// Servers that send whole calls without index or type, and
			// finish with "stop" (older Ollama): calls are numbered by id,
			// typed "function", and the turn finishes on the tool stream.
			Name: "ToolCallsWithoutIndexOrType",
			Responses: []Response{SSE(
				OpenAIDelta(`{"role":"assistant","content":"","tool_calls":[{"id":"call_a","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]}`),
				OpenAIDelta(`{"tool_calls":[{"id":"call_b","function":{"name":"get_time","arguments":"{}"}}]}`),
				OpenAIFinish("stop"),
				OpenAIDone(),
			)},
			Want: []string{
				`{"stream_type":"tool","data":{"index":0,"id":"call_a"}}`,
				`{"stream_type":"tool","data":{"index":0,"type":"function"}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"name":"get_weather"}}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"arguments":"{\"city\":\"Oslo\"}"}}}`,
				`{"stream_type":"tool","data":{"index":1,"id":"call_b"}}`,
				`{"stream_type":"tool","data":{"index":1,"type":"function"}}`,
				`{"stream_type":"tool","data":{"index":1,"function":{"name":"get_time"}}}`,
				`{"stream_type":"tool","data":{"index":1,"function":{"arguments":"{}"}}}`,
				`{"stream_type":"usage","data":{}}`,
			},
			Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamTool},
			Requests: 1,
		},
		{
			Name: "Length",
			Responses: []Response{SSE(
				OpenAIDelta(`{"role":"assistant","content":"Once upon"}`),
				OpenAIFinish("length"),
				OpenAIUsage(oaUsage),
				OpenAIDone(),
			)},
			Want: []string{
				`{"stream_type":"content","data":{"content":"Once upon"}}`,
				oaUsageChunk,
			},
			Finish:   engine.Finish{Reason: "length", Stream: engine.StreamContent},
			Requests: 1,
		},
		{
			Name: "RateLimitedThenSuccess",
			Responses: []Response{
				ErrorResponse(429, `{"error":{"message":"Rate limit reached for gpt-4.1 in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
					"Retry-After", "0"),
				OpenAIText(),
			},
			Want:     oaTextWant,
			Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests: 2,
		},
		{
			Name: "ServerErrorThenSuccess",
			Responses: []Response{
				ErrorResponse(503, `<html><body>503 Service Temporarily Unavailable</body></html>`),
				OpenAIText(),
			},
			Want:     oaTextWant,
			Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests: 2,
		},
		{
			// After the first chunk nothing is retried.
			Name: "DisconnectMidStream",
			Responses: []Response{SSE(
				OpenAIDelta(`{"role":"assistant","content":"Hel"}`),
				OpenAIDelta(`{"content":"lo"}`),
				Disconnect(),
			)},
			Want: []string{
				`{"stream_type":"content","data":{"content":"Hel"}}`,
				`{"stream_type":"content","data":{"content":"lo"}}`,
			},
			ErrType:    upstream.TypeConnection,
			ErrMessage: "closed the connection mid-stream",
			Requests:   1,
		},
		{
			Name: "ErrorEventMidStream",
			Responses: []Response{SSE(
				OpenAIDelta(`{"role":"assistant","content":"Partial"}`),
				OpenAIData(`{"error":{"message":"The server had an error processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`),
				OpenAIDone(),
			)},
			Want:       []string{`{"stream_type":"content","data":{"content":"Partial"}}`},
			ErrType:    upstream.TypeUpstream,
			ErrMessage: "upstream error (server_error): The server had an error processing your request.",
			Requests:   1,
		},
		{
			// vLLM reports errors mid-stream as an object of type "error".
			Name: "ErrorObjectMidStream",
			Responses: []Response{SSE(
				OpenAIDelta(`{"role":"assistant","content":"Partial"}`),
				OpenAIData(`{"object":"error","message":"Engine loop has died","type":"InternalServerError","param":null,"code":500}`),
			)},
			Want:       []string{`{"stream_type":"content","data":{"content":"Partial"}}`},
			ErrType:    upstream.TypeUpstream,
			ErrMessage: "Engine loop has died",
			Requests:   1,
		},
		{
			Name: "EndedWithoutFinishReason",
			Responses: []Response{SSE(
				OpenAIDelta(`{"role":"assistant","content":"Cut"}`),
			)},
			Want:       []string{`{"stream_type":"content","data":{"content":"Cut"}}`},
			ErrType:    upstream.TypeUpstream,
			ErrMessage: "ended without a finish_reason",
			Requests:   1,
		},
		{
			// The upstream echoes the key; the message must not.
			Name: "Unauthorized",
			Responses: []Response{ErrorResponse(401,
				`{"error":{"message":"Incorrect API key provided: `+APIKey+`. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)},
			ErrType:    upstream.TypeAuth,
			ErrMessage: "upstream returned 401 Unauthorized: Incorrect API key provided: [redacted].",
			Requests:   1,
		},
		{
			Name: "BadRequest",
			Responses: []Response{ErrorResponse(400,
				`{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`)},
			ErrType:    upstream.TypeInvalidRequest,
			ErrMessage: "upstream returned 400 Bad Request: This model's maximum context length is 128000 tokens.",
			Requests:   1,
		},
		{
			// A proxy that answers 200 with a JSON error.
			Name:       "JSONInsteadOfStream",
			Responses:  []Response{ErrorResponse(200, `{"error":{"message":"no healthy upstream","type":"proxy_error"}}`)},
			ErrType:    upstream.TypeUpstream,
			ErrMessage: "upstream answered with JSON instead of an event stream: no healthy upstream",
			Requests:   1,
		},
		{
			// Ollama's error body is {"error":"<text>"}.
			Name:       "NotFoundOllama",
			Responses:  []Response{ErrorResponse(404, `{"error":"model \"llama9\" not found, try pulling it first"}`)},
			ErrType:    upstream.TypeInvalidRequest,
			ErrMessage: `upstream returned 404 Not Found: model "llama9" not found, try pulling it first`,
			Requests:   1,
		},
	}
}
