package enginetest

import (
	"slices"
	"strconv"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// Anthropic Messages events as the API streams them.

// AnthropicMessageStart is a message_start event with the given usage.
func AnthropicMessageStart(usage string) Step {
	return AnthropicEvent("message_start", `{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":`+usage+`}}`)
}

// AnthropicPing is a ping event.
func AnthropicPing() Step { return AnthropicEvent("ping", `{"type": "ping"}`) }

// AnthropicBlockStart is a content_block_start event; block is the JSON of
// the content block.
func AnthropicBlockStart(index int, block string) Step {
	return AnthropicEvent("content_block_start", `{"type":"content_block_start","index":`+strconv.Itoa(index)+`,"content_block":`+block+`}`)
}

// AnthropicDelta is a content_block_delta event; delta is the JSON of the
// delta.
func AnthropicDelta(index int, delta string) Step {
	return AnthropicEvent("content_block_delta", `{"type":"content_block_delta","index":`+strconv.Itoa(index)+`,"delta":`+delta+`}`)
}

// AnthropicText is a text_delta.
func AnthropicText(index int, text string) Step {
	return AnthropicDelta(index, `{"type":"text_delta","text":`+strconv.Quote(text)+`}`)
}

// AnthropicBlockStop is a content_block_stop event.
func AnthropicBlockStop(index int) Step {
	return AnthropicEvent("content_block_stop", `{"type":"content_block_stop","index":`+strconv.Itoa(index)+`}`)
}

// AnthropicMessageDelta is a message_delta event with a stop reason and
// usage.
func AnthropicMessageDelta(stopReason, usage string) Step {
	return AnthropicEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"`+stopReason+`","stop_sequence":null},"usage":`+usage+`}`)
}

// AnthropicMessageStop is a message_stop event.
func AnthropicMessageStop() Step { return AnthropicEvent("message_stop", `{"type":"message_stop"}`) }

// AnthropicError is an error event.
func AnthropicError(typ, message string) Step {
	return AnthropicEvent("error", `{"type":"error","error":{"type":"`+typ+`","message":`+strconv.Quote(message)+`}}`)
}

const antStartUsage = `{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}`

// AnthropicTextResponse is a plain text answer: "Hello, wörld!".
func AnthropicTextResponse() Response {
	return SSE(
		AnthropicMessageStart(antStartUsage),
		AnthropicBlockStart(0, `{"type":"text","text":""}`),
		AnthropicPing(),
		AnthropicText(0, "Hello"),
		AnthropicText(0, ", wörld"),
		AnthropicText(0, "!"),
		AnthropicBlockStop(0),
		AnthropicMessageDelta("end_turn", `{"output_tokens":15}`),
		AnthropicMessageStop(),
	)
}

var antTextWant = []string{
	`{"stream_type":"content","data":{"content":"Hello"}}`,
	`{"stream_type":"content","data":{"content":", wörld"}}`,
	`{"stream_type":"content","data":{"content":"!"}}`,
	`{"stream_type":"usage","data":{"input_tokens":25,"output_tokens":15,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}`,
}

// AnthropicFixtures returns the Anthropic Messages scenarios.
func AnthropicFixtures() []Fixture {
	return []Fixture{
		{
			Name:      "Text",
			Responses: []Response{AnthropicTextResponse()},
			Want:      antTextWant,
			Finish:    engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests:  1,
		},
		{
			// Extended thinking, a sentence, then two tool calls: the calls
			// are indexed 0 and 1 though their content blocks are 2 and 3.
			Name: "ThinkingAndToolUse",
			Responses: []Response{SSE(
				AnthropicMessageStart(`{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,"output_tokens":2}`),
				AnthropicBlockStart(0, `{"type":"thinking","thinking":"","signature":""}`),
				AnthropicPing(),
				AnthropicDelta(0, `{"type":"thinking_delta","thinking":"The user wants the weather"}`),
				AnthropicDelta(0, `{"type":"thinking_delta","thinking":" and the time in Paris."}`),
				AnthropicDelta(0, `{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}`),
				AnthropicBlockStop(0),
				AnthropicBlockStart(1, `{"type":"text","text":""}`),
				AnthropicText(1, "Let me check."),
				AnthropicBlockStop(1),
				AnthropicBlockStart(2, `{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}`),
				AnthropicDelta(2, `{"type":"input_json_delta","partial_json":""}`),
				AnthropicDelta(2, `{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}`),
				AnthropicDelta(2, `{"type":"input_json_delta","partial_json":"is\"}"}`),
				AnthropicBlockStop(2),
				AnthropicBlockStart(3, `{"type":"tool_use","id":"toolu_01Ab2cD3eF4gH5iJ6kL7mN8o","name":"get_time","input":{}}`),
				AnthropicDelta(3, `{"type":"input_json_delta","partial_json":""}`),
				AnthropicDelta(3, `{"type":"input_json_delta","partial_json":"{\"tz\": \"Europe/Paris\"}"}`),
				AnthropicBlockStop(3),
				AnthropicMessageDelta("tool_use", `{"output_tokens":89}`),
				AnthropicMessageStop(),
			)},
			Want: []string{
				`{"stream_type":"thinking","data":{"thinking":"The user wants the weather"}}`,
				`{"stream_type":"thinking","data":{"thinking":" and the time in Paris."}}`,
				`{"stream_type":"content","data":{"content":"Let me check."}}`,
				`{"stream_type":"tool","data":{"index":0,"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6"}}`,
				`{"stream_type":"tool","data":{"index":0,"type":"function"}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"name":"get_weather"}}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"arguments":"{\"city\": \"Par"}}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"arguments":"is\"}"}}}`,
				`{"stream_type":"tool","data":{"index":1,"id":"toolu_01Ab2cD3eF4gH5iJ6kL7mN8o"}}`,
				`{"stream_type":"tool","data":{"index":1,"type":"function"}}`,
				`{"stream_type":"tool","data":{"index":1,"function":{"name":"get_time"}}}`,
				`{"stream_type":"tool","data":{"index":1,"function":{"arguments":"{\"tz\": \"Europe/Paris\"}"}}}`,
				`{"stream_type":"usage","data":{"input_tokens":472,"output_tokens":89,"cache_read_input_tokens":2048,"cache_creation_input_tokens":0}}`,
			},
			Finish:   engine.Finish{Reason: "tool_use", Stream: engine.StreamTool},
			Requests: 1,
		},
		{
			// The bytes of 東 travel in two network writes.
			Name: "ArgumentsSplitInsideCharacter",
			Responses: []Response{SSE(slices.Concat(
				[]Step{
					AnthropicMessageStart(antStartUsage),
					AnthropicBlockStart(0, `{"type":"tool_use","id":"toolu_01Jp","name":"get_weather","input":{}}`),
					AnthropicDelta(0, `{"type":"input_json_delta","partial_json":""}`),
				},
				SplitInside(AnthropicDelta(0, `{"type":"input_json_delta","partial_json":"{\"city\": \"東京\"}"}`), "東"),
				[]Step{
					AnthropicBlockStop(0),
					AnthropicMessageDelta("tool_use", `{"output_tokens":30}`),
					AnthropicMessageStop(),
				},
			)...)},
			Want: []string{
				`{"stream_type":"tool","data":{"index":0,"id":"toolu_01Jp"}}`,
				`{"stream_type":"tool","data":{"index":0,"type":"function"}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"name":"get_weather"}}}`,
				`{"stream_type":"tool","data":{"index":0,"function":{"arguments":"{\"city\": \"東京\"}"}}}`,
				`{"stream_type":"usage","data":{"input_tokens":25,"output_tokens":30,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}`,
			},
			Finish:   engine.Finish{Reason: "tool_use", Stream: engine.StreamTool},
			Requests: 1,
		},
		{
			// message_delta's usage, when it carries input and cache counts,
			// is cumulative and wins over message_start's.
			Name: "MaxTokens",
			Responses: []Response{SSE(
				AnthropicMessageStart(antStartUsage),
				AnthropicBlockStart(0, `{"type":"text","text":""}`),
				AnthropicText(0, ""),
				AnthropicText(0, "Once upon"),
				AnthropicBlockStop(0),
				AnthropicMessageDelta("max_tokens", `{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":0,"output_tokens":2,"output_tokens_details":{"thinking_tokens":0}}`),
				AnthropicMessageStop(),
			)},
			Want: []string{
				`{"stream_type":"content","data":{"content":"Once upon"}}`,
				`{"stream_type":"usage","data":{"input_tokens":25,"output_tokens":2,"cache_read_input_tokens":0,"cache_creation_input_tokens":10,"reasoning_tokens":0}}`,
			},
			Finish:   engine.Finish{Reason: "length", Stream: engine.StreamContent},
			Requests: 1,
		},
		{
			Name: "StopSequence",
			Responses: []Response{SSE(
				AnthropicMessageStart(antStartUsage),
				AnthropicBlockStart(0, `{"type":"text","text":""}`),
				AnthropicText(0, "1, 2, 3"),
				AnthropicBlockStop(0),
				AnthropicEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"4"},"usage":{"output_tokens":7}}`),
				AnthropicMessageStop(),
			)},
			Want: []string{
				`{"stream_type":"content","data":{"content":"1, 2, 3"}}`,
				`{"stream_type":"usage","data":{"input_tokens":25,"output_tokens":7,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}`,
			},
			Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests: 1,
		},
		{
			Name: "Refusal",
			Responses: []Response{SSE(
				AnthropicMessageStart(antStartUsage),
				AnthropicBlockStart(0, `{"type":"text","text":""}`),
				AnthropicText(0, "I can't help with that."),
				AnthropicBlockStop(0),
				AnthropicMessageDelta("refusal", `{"output_tokens":9}`),
				AnthropicMessageStop(),
			)},
			Want: []string{
				`{"stream_type":"content","data":{"content":"I can't help with that."}}`,
				`{"stream_type":"usage","data":{"input_tokens":25,"output_tokens":9,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}`,
			},
			Finish:   engine.Finish{Reason: "refusal", Stream: engine.StreamContent},
			Requests: 1,
		},
		{
			Name: "RateLimitedThenSuccess",
			Responses: []Response{
				ErrorResponse(429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`,
					"Retry-After", "0"),
				AnthropicTextResponse(),
			},
			Want:     antTextWant,
			Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests: 2,
		},
		{
			// An error event before any output is retried like a 5xx.
			Name: "OverloadedBeforeFirstChunkThenSuccess",
			Responses: []Response{
				SSE(AnthropicMessageStart(antStartUsage), AnthropicPing(), AnthropicError("overloaded_error", "Overloaded")),
				ErrorResponse(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
				AnthropicTextResponse(),
			},
			Want:     antTextWant,
			Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests: 3,
		},
		{
			Name: "ErrorEventMidStream",
			Responses: []Response{SSE(
				AnthropicMessageStart(antStartUsage),
				AnthropicBlockStart(0, `{"type":"text","text":""}`),
				AnthropicText(0, "Partial"),
				AnthropicError("overloaded_error", "Overloaded"),
			)},
			Want:       []string{`{"stream_type":"content","data":{"content":"Partial"}}`},
			ErrType:    upstream.TypeUpstream,
			ErrMessage: "upstream error (overloaded_error): Overloaded",
			Requests:   1,
		},
		{
			Name: "DisconnectMidStream",
			Responses: []Response{SSE(
				AnthropicMessageStart(antStartUsage),
				AnthropicBlockStart(0, `{"type":"text","text":""}`),
				AnthropicText(0, "Hel"),
				Disconnect(),
			)},
			Want:       []string{`{"stream_type":"content","data":{"content":"Hel"}}`},
			ErrType:    upstream.TypeConnection,
			ErrMessage: "closed the connection mid-stream",
			Requests:   1,
		},
		{
			Name: "EndedWithoutStopReason",
			Responses: []Response{SSE(
				AnthropicMessageStart(antStartUsage),
				AnthropicBlockStart(0, `{"type":"text","text":""}`),
				AnthropicText(0, "Cut"),
			)},
			Want:       []string{`{"stream_type":"content","data":{"content":"Cut"}}`},
			ErrType:    upstream.TypeUpstream,
			ErrMessage: "ended without a stop_reason",
			Requests:   1,
		},
		{
			// The upstream echoes the key; the message must not.
			Name: "Unauthorized",
			Responses: []Response{ErrorResponse(401,
				`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key `+APIKey+`"}}`)},
			ErrType:    upstream.TypeAuth,
			ErrMessage: "upstream returned 401 Unauthorized: invalid x-api-key [redacted]",
			Requests:   1,
		},
		{
			Name: "BadRequest",
			Responses: []Response{ErrorResponse(400,
				`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}`)},
			ErrType:    upstream.TypeInvalidRequest,
			ErrMessage: "upstream returned 400 Bad Request: prompt is too long: 210000 tokens > 200000 maximum",
			Requests:   1,
		},
	}
}
