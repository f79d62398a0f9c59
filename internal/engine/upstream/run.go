package upstream

import (
	"context"
	"encoding/json"

	"github.com/jobstream/jobstream/internal/engine"
)

// BuildFunc turns merged params and decoded messages into a provider's
// request type.
type BuildFunc[P any] func(params map[string]json.RawMessage, msgs []engine.Message) (P, error)

// Validate checks params the way Stream would (defaults merged under them,
// messages decoded when params carry them), for engine.Validator.
func Validate[P any](defaults, params map[string]json.RawMessage, build BuildFunc[P]) error {
	p := MergeParams(defaults, params)
	var msgs []engine.Message
	_, hasMessages := p[engine.ParamMessages]
	_, hasPrompt := p[engine.ParamFullPrompt]
	if hasMessages || hasPrompt {
		var err error
		if msgs, err = Messages(engine.Request{Params: p}); err != nil {
			return err
		}
	}
	_, err := build(p, msgs)
	return err
}

// Stream runs one engine turn for a provider: it builds the provider request
// from req (an invalid request fails at once, counted as invalid_request),
// then calls attempt under c's retry policy until it succeeds or fails for
// good.
func Stream[P any](ctx context.Context, c *Caller, defaults map[string]json.RawMessage, req engine.Request, build BuildFunc[P],
	attempt func(ctx context.Context, at *Attempt, params P) (engine.Finish, error)) (engine.Finish, error) {
	msgs, err := Messages(req)
	if err != nil {
		return engine.Finish{}, c.Fail(&engine.Error{Type: TypeInvalidRequest, Message: err.Error()})
	}
	params, err := build(MergeParams(defaults, req.Params), msgs)
	if err != nil {
		return engine.Finish{}, c.Fail(&engine.Error{Type: TypeInvalidRequest, Message: err.Error()})
	}
	var finish engine.Finish
	err = c.Do(ctx, func(ctx context.Context, at *Attempt) error {
		var err error
		finish, err = attempt(ctx, at, params)
		return err
	})
	if err != nil {
		return engine.Finish{}, err
	}
	return finish, nil
}
