package enginetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// NewResponsesServer starts a fake OpenAI Responses server that answers
// POSTs to any path ending in /responses with responses, in order. It is
// closed when the test ends.
func NewResponsesServer(t testing.TB, responses ...Response) *Server {
	return newServer(t, "/responses", func(msg string) string {
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": nil}})
		return string(b)
	}, responses)
}

// ResponsesEvent writes one Responses API SSE event, "event: <type>" plus
// its data, the JSON object fields given (without type and
// sequence_number, which it adds; seq numbers the events of one stream).
func ResponsesEvent(seq int, typ, fields string) Step {
	data := fmt.Sprintf(`{"type":%q,"sequence_number":%d`, typ, seq)
	if fields = strings.TrimSpace(fields); fields != "" {
		data += "," + fields
	}
	return Raw("event: " + typ + "\ndata: " + data + "}\n\n")
}

// rsResponse is a Response object in the given status, as the lifecycle
// events carry it.
func rsResponse(status, extra string) string {
	s := `"response":{"id":"resp_68af4030592c81938ec0a5fbab4a3e9f","object":"response","created_at":1756315696,"status":"` + status +
		`","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"gpt-5-2025-08-07","output":[],"parallel_tool_calls":true,"previous_response_id":null,"store":true,"temperature":1.0,"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":null,"metadata":{}`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

const rsUsage = `"usage":{"input_tokens":19,"input_tokens_details":{"cached_tokens":0},"output_tokens":10,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":29}`

const rsUsageChunk = `{"stream_type":"usage","data":{"input_tokens":19,"output_tokens":10,"cache_read_input_tokens":0,"reasoning_tokens":0}}`

// rsStream numbers the events of one stream.
type rsStream struct{ seq int }

func (s *rsStream) ev(typ, fields string) Step {
	st := ResponsesEvent(s.seq, typ, fields)
	s.seq++
	return st
}

func (s *rsStream) created() []Step {
	return []Step{
		s.ev("response.created", rsResponse("in_progress", "")),
		s.ev("response.in_progress", rsResponse("in_progress", "")),
	}
}

// message is an output message item whose text arrives as deltas.
func (s *rsStream) message(index int, deltas ...string) []Step {
	id := fmt.Sprintf(`"msg_%d"`, index)
	out := []Step{
		s.ev("response.output_item.added", fmt.Sprintf(`"output_index":%d,"item":{"id":%s,"type":"message","status":"in_progress","content":[],"role":"assistant"}`, index, id)),
		s.ev("response.content_part.added", fmt.Sprintf(`"item_id":%s,"output_index":%d,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}`, id, index)),
	}
	for _, d := range deltas {
		b, _ := json.Marshal(d)
		out = append(out, s.ev("response.output_text.delta", fmt.Sprintf(`"item_id":%s,"output_index":%d,"content_index":0,"delta":%s,"logprobs":[],"obfuscation":"x"`, id, index, b)))
	}
	text, _ := json.Marshal(strings.Join(deltas, ""))
	return append(out,
		s.ev("response.output_text.done", fmt.Sprintf(`"item_id":%s,"output_index":%d,"content_index":0,"text":%s,"logprobs":[]`, id, index, text)),
		s.ev("response.content_part.done", fmt.Sprintf(`"item_id":%s,"output_index":%d,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":%s}`, id, index, text)),
		s.ev("response.output_item.done", fmt.Sprintf(`"output_index":%d,"item":{"id":%s,"type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":%s}],"role":"assistant"}`, index, id, text)),
	)
}

func (s *rsStream) completed(status, extra string) Step {
	typ := "response.completed"
	if status == "incomplete" {
		typ = "response.incomplete"
	}
	return s.ev(typ, rsResponse(status, extra))
}

// ResponsesText is a plain text answer: "Hello, wörld!".
func ResponsesText() Response {
	s := &rsStream{}
	steps := s.created()
	steps = append(steps, s.message(0, "Hello", ", wörld", "!")...)
	return SSE(append(steps, s.completed("completed", rsUsage))...)
}

// ResponsesFixtures returns the OpenAI Responses API scenarios.
func ResponsesFixtures() []Fixture {
	var text = []string{
		`{"stream_type":"content","data":{"content":"Hello"}}`,
		`{"stream_type":"content","data":{"content":", wörld"}}`,
		`{"stream_type":"content","data":{"content":"!"}}`,
		rsUsageChunk,
	}
	return []Fixture{
		{
			Name:      "Text",
			Responses: []Response{ResponsesText()},
			Want:      text,
			Finish:    engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests:  1,
		},
		func() Fixture {
			// A reasoning model: a reasoning item whose summary streams,
			// then the answer.
			s := &rsStream{}
			steps := s.created()
			steps = append(steps,
				s.ev("response.output_item.added", `"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}`),
				s.ev("response.reasoning_summary_part.added", `"item_id":"rs_1","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}`),
				s.ev("response.reasoning_summary_text.delta", `"item_id":"rs_1","output_index":0,"summary_index":0,"delta":"**Greeting** The user says hi.","obfuscation":"x"`),
				s.ev("response.reasoning_summary_text.delta", `"item_id":"rs_1","output_index":0,"summary_index":0,"delta":" Reply briefly.","obfuscation":"x"`),
				s.ev("response.reasoning_summary_text.done", `"item_id":"rs_1","output_index":0,"summary_index":0,"text":"**Greeting** The user says hi. Reply briefly."`),
				s.ev("response.reasoning_summary_part.done", `"item_id":"rs_1","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":"**Greeting** The user says hi. Reply briefly."}`),
				s.ev("response.output_item.done", `"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[{"type":"summary_text","text":"**Greeting** The user says hi. Reply briefly."}]}`),
			)
			steps = append(steps, s.message(1, "Hi!")...)
			steps = append(steps, s.completed("completed", `"usage":{"input_tokens":8,"input_tokens_details":{"cached_tokens":4},"output_tokens":120,"output_tokens_details":{"reasoning_tokens":112},"total_tokens":128}`))
			return Fixture{
				Name:      "ReasoningSummary",
				Responses: []Response{SSE(steps...)},
				Want: []string{
					`{"stream_type":"thinking","data":{"thinking":"**Greeting** The user says hi."}}`,
					`{"stream_type":"thinking","data":{"thinking":" Reply briefly."}}`,
					`{"stream_type":"content","data":{"content":"Hi!"}}`,
					`{"stream_type":"usage","data":{"input_tokens":8,"output_tokens":120,"cache_read_input_tokens":4,"reasoning_tokens":112}}`,
				},
				Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamContent},
				Requests: 1,
			}
		}(),
		func() Fixture {
			// Two function calls whose argument deltas interleave.
			s := &rsStream{}
			steps := s.created()
			steps = append(steps,
				s.ev("response.output_item.added", `"output_index":0,"item":{"id":"fc_1","type":"function_call","status":"in_progress","arguments":"","call_id":"call_Dx1","name":"get_weather"}`),
				s.ev("response.function_call_arguments.delta", `"item_id":"fc_1","output_index":0,"delta":"{\"ci","obfuscation":"x"`),
				s.ev("response.output_item.added", `"output_index":1,"item":{"id":"fc_2","type":"function_call","status":"in_progress","arguments":"","call_id":"call_Dx2","name":"get_time"}`),
				s.ev("response.function_call_arguments.delta", `"item_id":"fc_1","output_index":0,"delta":"ty\": \"Paris\"}","obfuscation":"x"`),
				s.ev("response.function_call_arguments.delta", `"item_id":"fc_2","output_index":1,"delta":"{\"tz\": \"Europe/Paris\"}","obfuscation":"x"`),
				s.ev("response.function_call_arguments.done", `"item_id":"fc_1","output_index":0,"arguments":"{\"city\": \"Paris\"}"`),
				s.ev("response.output_item.done", `"output_index":0,"item":{"id":"fc_1","type":"function_call","status":"completed","arguments":"{\"city\": \"Paris\"}","call_id":"call_Dx1","name":"get_weather"}`),
				s.ev("response.function_call_arguments.done", `"item_id":"fc_2","output_index":1,"arguments":"{\"tz\": \"Europe/Paris\"}"`),
				s.ev("response.output_item.done", `"output_index":1,"item":{"id":"fc_2","type":"function_call","status":"completed","arguments":"{\"tz\": \"Europe/Paris\"}","call_id":"call_Dx2","name":"get_time"}`),
				s.completed("completed", rsUsage),
			)
			return Fixture{
				Name:      "ParallelFunctionCalls",
				Responses: []Response{SSE(steps...)},
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
					rsUsageChunk,
				},
				Finish:   engine.Finish{Reason: "tool_calls", Stream: engine.StreamTool},
				Requests: 1,
			}
		}(),
		func() Fixture {
			// A server that sends a call's arguments only whole, in .done.
			s := &rsStream{}
			steps := s.created()
			steps = append(steps,
				s.ev("response.output_item.added", `"output_index":0,"item":{"id":"fc_1","type":"function_call","status":"in_progress","arguments":"","call_id":"call_a","name":"get_weather"}`),
				s.ev("response.function_call_arguments.done", `"item_id":"fc_1","output_index":0,"arguments":"{\"city\":\"Oslo\"}"`),
				s.completed("completed", ""),
			)
			return Fixture{
				Name:      "ArgumentsOnlyInDone",
				Responses: []Response{SSE(steps...)},
				Want: []string{
					`{"stream_type":"tool","data":{"index":0,"id":"call_a"}}`,
					`{"stream_type":"tool","data":{"index":0,"type":"function"}}`,
					`{"stream_type":"tool","data":{"index":0,"function":{"name":"get_weather"}}}`,
					`{"stream_type":"tool","data":{"index":0,"function":{"arguments":"{\"city\":\"Oslo\"}"}}}`,
					`{"stream_type":"usage","data":{}}`,
				},
				Finish:   engine.Finish{Reason: "tool_calls", Stream: engine.StreamTool},
				Requests: 1,
			}
		}(),
		func() Fixture {
			s := &rsStream{}
			steps := s.created()
			steps = append(steps, s.message(0, "Once upon")...)
			steps = append(steps, s.completed("incomplete", `"incomplete_details":{"reason":"max_output_tokens"},`+rsUsage))
			return Fixture{
				Name:      "IncompleteMaxOutputTokens",
				Responses: []Response{SSE(steps...)},
				Want:      []string{`{"stream_type":"content","data":{"content":"Once upon"}}`, rsUsageChunk},
				Finish:    engine.Finish{Reason: "length", Stream: engine.StreamContent},
				Requests:  1,
			}
		}(),
		func() Fixture {
			s := &rsStream{}
			steps := s.created()
			steps = append(steps, s.message(0, "I")...)
			steps = append(steps, s.completed("incomplete", `"incomplete_details":{"reason":"content_filter"}`))
			return Fixture{
				Name:      "IncompleteContentFilter",
				Responses: []Response{SSE(steps...)},
				Want:      []string{`{"stream_type":"content","data":{"content":"I"}}`, `{"stream_type":"usage","data":{}}`},
				Finish:    engine.Finish{Reason: "content_filter", Stream: engine.StreamContent},
				Requests:  1,
			}
		}(),
		{
			Name: "RateLimitedThenSuccess",
			Responses: []Response{
				ErrorResponse(429, `{"error":{"message":"Rate limit reached for gpt-5 on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
					"Retry-After", "0"),
				ResponsesText(),
			},
			Want:     text,
			Finish:   engine.Finish{Reason: "stop", Stream: engine.StreamContent},
			Requests: 2,
		},
		func() Fixture {
			// After the first chunk nothing is retried.
			s := &rsStream{}
			steps := s.created()
			steps = append(steps, s.message(0, "Hel", "lo")[:4]...)
			return Fixture{
				Name:      "DisconnectMidStream",
				Responses: []Response{SSE(append(steps, Disconnect())...)},
				Want: []string{
					`{"stream_type":"content","data":{"content":"Hel"}}`,
					`{"stream_type":"content","data":{"content":"lo"}}`,
				},
				ErrType:    upstream.TypeConnection,
				ErrMessage: "closed the connection mid-stream",
				Requests:   1,
			}
		}(),
		func() Fixture {
			s := &rsStream{}
			steps := s.created()
			steps = append(steps, s.message(0, "Partial")[:3]...)
			steps = append(steps, s.ev("error", `"code":"server_error","message":"The server had an error while processing your request.","param":null`))
			return Fixture{
				Name:       "ErrorEventMidStream",
				Responses:  []Response{SSE(steps...)},
				Want:       []string{`{"stream_type":"content","data":{"content":"Partial"}}`},
				ErrType:    upstream.TypeUpstream,
				ErrMessage: "The server had an error while processing your request.",
				Requests:   1,
			}
		}(),
		func() Fixture {
			s := &rsStream{}
			steps := s.created()
			steps = append(steps, s.message(0, "Partial")[:3]...)
			failed := strings.Replace(rsResponse("failed", ""), `"error":null`,
				`"error":{"code":"server_error","message":"The model failed to generate a response."}`, 1)
			steps = append(steps, s.ev("response.failed", failed))
			return Fixture{
				Name:       "ResponseFailed",
				Responses:  []Response{SSE(steps...)},
				Want:       []string{`{"stream_type":"content","data":{"content":"Partial"}}`},
				ErrType:    upstream.TypeUpstream,
				ErrMessage: "The model failed to generate a response.",
				Requests:   1,
			}
		}(),
		func() Fixture {
			s := &rsStream{}
			steps := s.created()
			steps = append(steps, s.message(0, "Cut")[:3]...)
			return Fixture{
				Name:       "EndedWithoutCompleted",
				Responses:  []Response{SSE(steps...)},
				Want:       []string{`{"stream_type":"content","data":{"content":"Cut"}}`},
				ErrType:    upstream.TypeUpstream,
				ErrMessage: "ended without response.completed",
				Requests:   1,
			}
		}(),
		{
			// The upstream echoes the key; the message must not.
			Name: "Unauthorized",
			Responses: []Response{ErrorResponse(401,
				`{"error":{"message":"Incorrect API key provided: `+APIKey+`. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)},
			ErrType:    upstream.TypeAuth,
			ErrMessage: "upstream returned 401 Unauthorized: Incorrect API key provided: [redacted].",
			Requests:   1,
		},
	}
}
