// Package engineconfig loads the engines file: the YAML list of model
// engines a jobstream server offers (given by `serve --engines FILE` or
// JOBSTREAM_ENGINES), validated with errors that name the file, the entry
// and the line, and built into an *engine.Registry.
//
// The file holds no secrets: an entry names the environment variable that
// holds its API key (api_key_env), resolved through the getenv func the
// caller passes, so this package never reads the environment itself. The
// simulator is registered as "sim" unless the file defines that id. See
// engines.example.yaml beside this file for every field.
package engineconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/anthropic"
	"github.com/jobstream/jobstream/internal/engine/openai"
	"github.com/jobstream/jobstream/internal/engine/responses"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// Providers.
const (
	ProviderOpenAI = "openai"
	// ProviderOpenAIResponses is an upstream OpenAI Responses API
	// (internal/engine/responses).
	ProviderOpenAIResponses = "openai-responses"
	ProviderAnthropic       = "anthropic"
	ProviderSim             = "sim"
)

// MaxRetriesLimit is the most max_retries an entry may ask for.
const MaxRetriesLimit = 10

// Hooks receive the engines' retry and failure events, labelled with the
// engine id, for metrics. Either may be nil.
type Hooks struct {
	// OnRetry is called before each retry of an upstream call; attempt is
	// 1 for the first retry.
	OnRetry func(engineID string, attempt int, err error)
	// OnFailure is called once per failed call with the error type
	// (invalid_request, auth_error, rate_limited, timeout, connection_error,
	// upstream_error).
	OnFailure func(engineID, errType string)
}

// File is a parsed and validated engines file.
type File struct {
	// Path is the file's path, as given.
	Path string
	// Engines are the file's entries, in file order.
	Engines []Entry
}

// Entry is one engine of the file.
type Entry struct {
	ID        string
	Provider  string
	Model     string
	BaseURL   string
	APIKeyEnv string
	// Line is the entry's line in the file.
	Line int

	opts options
}

// Default returns a registry holding only the simulator, for a server run
// without an engines file.
func Default() *engine.Registry {
	r := engine.NewRegistry()
	r.Register(sim.Info(), sim.New())
	return r
}

// Load reads the engines file at path and builds its registry, resolving API
// keys through getenv.
func Load(path string, getenv func(string) string) (*engine.Registry, error) {
	return LoadWithHooks(path, getenv, Hooks{})
}

// LoadWithHooks is Load with metrics hooks.
func LoadWithHooks(path string, getenv func(string) string, hooks Hooks) (*engine.Registry, error) {
	f, err := Read(path)
	if err != nil {
		return nil, err
	}
	return f.Build(getenv, hooks)
}

// Read parses and validates the engines file at path without resolving API
// keys, so that engines can be listed where the keys are not set.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("engines file: %w", err)
	}
	return Parse(path, b)
}

// Parse parses and validates an engines file's content; path is only used in
// error messages.
func Parse(path string, content []byte) (*File, error) {
	var doc fileYAML
	dec := yaml.NewDecoder(strings.NewReader(string(content)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("engines file %s: %s", path, yamlError(err))
	}
	lines := entryLines(content)
	f := &File{Path: path}
	var errs []error
	seen := map[string]int{}
	for i, y := range doc.Engines {
		e := Entry{
			ID:        y.ID,
			Provider:  y.Provider,
			Model:     y.Model,
			BaseURL:   y.BaseURL,
			APIKeyEnv: y.APIKeyEnv,
			opts:      y.Options,
		}
		if i < len(lines) {
			e.Line = lines[i]
		}
		where := e.where(path, i)
		for _, problem := range e.validate() {
			errs = append(errs, fmt.Errorf("%s: %s", where, problem))
		}
		if e.ID != "" {
			if line, dup := seen[e.ID]; dup {
				errs = append(errs, fmt.Errorf("%s: duplicate id, already used by the engine on line %d", where, line))
			}
			seen[e.ID] = e.Line
		}
		f.Engines = append(f.Engines, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

// where names an entry in error messages: file, position, id and line.
func (e *Entry) where(path string, i int) string {
	s := fmt.Sprintf("engines file %s: engine %d", path, i+1)
	var details []string
	if e.ID != "" {
		details = append(details, fmt.Sprintf("id %q", e.ID))
	}
	if e.Line > 0 {
		details = append(details, fmt.Sprintf("line %d", e.Line))
	}
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	return s
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// credentialHeaders may not be set in the file: keys go in api_key_env.
var credentialHeaders = []string{"authorization", "proxy-authorization", "x-api-key", "api-key"}

// validate returns the entry's problems as user-facing messages.
func (e *Entry) validate() []string {
	var p []string
	switch {
	case e.ID == "":
		p = append(p, "id is required")
	case strings.TrimSpace(e.ID) != e.ID:
		p = append(p, "id must not start or end with spaces")
	}
	o := &e.opts
	switch e.Provider {
	case ProviderOpenAI, ProviderOpenAIResponses, ProviderAnthropic:
		if e.Model == "" {
			p = append(p, "model is required")
		}
		if err := e.checkBaseURL(); err != nil {
			p = append(p, err.Error())
		}
		if e.APIKeyEnv != "" && !envName.MatchString(e.APIKeyEnv) {
			// Never echo the value: it may be a key pasted in by mistake.
			p = append(p, "api_key_env must be the name of an environment variable (letters, digits and _), not the key itself")
		}
		for _, name := range slices.Sorted(maps.Keys(o.Headers)) {
			if slices.Contains(credentialHeaders, strings.ToLower(name)) {
				p = append(p, fmt.Sprintf("options.headers: %s carries credentials, which do not belong in this file: name the variable that holds the key in api_key_env", name))
			}
		}
	case ProviderSim:
		for _, f := range []struct{ name, value string }{
			{"model", e.Model}, {"base_url", e.BaseURL}, {"api_key_env", e.APIKeyEnv},
		} {
			if f.value != "" {
				p = append(p, fmt.Sprintf("%s does not apply to provider sim", f.name))
			}
		}
		if o.Headers != nil || o.Timeout != nil || o.IdleTimeout != nil || o.MaxRetries != nil ||
			o.RetryBaseDelay != nil || o.MaxRetryDelay != nil {
			p = append(p, "provider sim takes only options.params")
		}
	case "":
		p = append(p, "provider is required (openai, openai-responses, anthropic or sim)")
	default:
		p = append(p, fmt.Sprintf("unknown provider %q (want openai, openai-responses, anthropic or sim)", e.Provider))
	}
	if e.Provider != ProviderOpenAI {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"max_tokens_param", o.MaxTokensParam != ""},
			{"include_usage", o.IncludeUsage != nil},
		} {
			if f.set {
				p = append(p, fmt.Sprintf("options.%s applies only to provider openai", f.name))
			}
		}
	}
	if e.Provider != ProviderOpenAI && e.Provider != ProviderOpenAIResponses {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"query", o.Query != nil},
			{"api_key_header", o.APIKeyHeader != ""},
		} {
			if f.set {
				p = append(p, fmt.Sprintf("options.%s applies only to providers openai and openai-responses", f.name))
			}
		}
	}
	if e.Provider != ProviderAnthropic && o.PassthroughParams != nil {
		p = append(p, "options.passthrough_params applies only to provider anthropic")
	}
	switch o.MaxTokensParam {
	case "", openai.MaxTokensParamCompletion, openai.MaxTokensParamLegacy:
	default:
		p = append(p, fmt.Sprintf("options.max_tokens_param must be %s or %s", openai.MaxTokensParamCompletion, openai.MaxTokensParamLegacy))
	}
	if o.MaxRetries != nil && (*o.MaxRetries < 0 || *o.MaxRetries > MaxRetriesLimit) {
		p = append(p, fmt.Sprintf("options.max_retries must be between 0 and %d", MaxRetriesLimit))
	}
	for _, f := range []struct {
		name string
		d    *Duration
	}{
		{"timeout", o.Timeout}, {"idle_timeout", o.IdleTimeout},
		{"retry_base_delay", o.RetryBaseDelay}, {"max_retry_delay", o.MaxRetryDelay},
	} {
		if f.d != nil && *f.d < 0 {
			p = append(p, fmt.Sprintf("options.%s must not be negative", f.name))
		}
	}
	if _, err := o.params(); err != nil {
		p = append(p, err.Error())
	}
	return p
}

func (e *Entry) checkBaseURL() error {
	var err error
	if e.Provider == ProviderOpenAI || e.Provider == ProviderOpenAIResponses {
		_, _, err = openai.BaseURL(e.BaseURL)
	} else {
		_, err = anthropic.BaseURL(e.BaseURL)
	}
	if err != nil {
		return err
	}
	if u, _ := url.Parse(e.BaseURL); u != nil && u.User != nil {
		return errors.New("base_url must not carry credentials: name the variable that holds the key in api_key_env")
	}
	return nil
}

// Info describes the entry for engine listings, without secrets.
func (e *Entry) Info() engine.Info {
	info := engine.Info{ID: e.ID, Provider: e.Provider, Model: e.Model, BaseURL: e.BaseURL}
	switch {
	case e.Provider == ProviderSim:
		info.Model = sim.Info().Model
	case info.BaseURL != "":
	case e.Provider == ProviderOpenAI || e.Provider == ProviderOpenAIResponses:
		info.BaseURL = openai.DefaultBaseURL
	case e.Provider == ProviderAnthropic:
		info.BaseURL = anthropic.DefaultBaseURL
	}
	return info
}

// Infos lists the engines the file's registry holds, in registration order:
// the simulator first unless the file defines "sim", then the file's.
func (f *File) Infos() []engine.Info {
	var out []engine.Info
	if !f.definesSim() {
		out = append(out, sim.Info())
	}
	for i := range f.Engines {
		out = append(out, f.Engines[i].Info())
	}
	return out
}

func (f *File) definesSim() bool {
	return slices.ContainsFunc(f.Engines, func(e Entry) bool { return e.ID == sim.ID })
}

// Build creates the file's engines and registers them, resolving each
// entry's api_key_env through getenv (nil reads nothing). A variable that is
// named but unset or empty is an error naming the variable.
func (f *File) Build(getenv func(string) string, hooks Hooks) (*engine.Registry, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	r := engine.NewRegistry()
	if !f.definesSim() {
		r.Register(sim.Info(), sim.New())
	}
	var errs []error
	for i := range f.Engines {
		e := &f.Engines[i]
		eng, err := e.build(getenv, hooks)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.where(f.Path, i), err))
			continue
		}
		r.Register(e.Info(), eng)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func (e *Entry) build(getenv func(string) string, hooks Hooks) (engine.Engine, error) {
	params, err := e.opts.params()
	if err != nil {
		return nil, err
	}
	var key string
	if e.APIKeyEnv != "" {
		if key = getenv(e.APIKeyEnv); key == "" {
			return nil, fmt.Errorf("environment variable %s (api_key_env) is not set", e.APIKeyEnv)
		}
	}
	policy := e.opts.policy()
	if hooks.OnRetry != nil {
		policy.OnRetry = func(attempt int, err error) { hooks.OnRetry(e.ID, attempt, err) }
	}
	if hooks.OnFailure != nil {
		policy.OnFailure = func(errType string) { hooks.OnFailure(e.ID, errType) }
	}
	var eng interface {
		engine.Engine
		engine.Validator
	}
	switch e.Provider {
	case ProviderOpenAI:
		eng, err = openai.New(openai.Config{
			Model:           e.Model,
			BaseURL:         e.BaseURL,
			APIKey:          key,
			APIKeyHeader:    e.opts.APIKeyHeader,
			Headers:         e.opts.Headers,
			Query:           e.opts.Query,
			Params:          params,
			MaxTokensParam:  e.opts.MaxTokensParam,
			OmitStreamUsage: e.opts.IncludeUsage != nil && !*e.opts.IncludeUsage,
			Policy:          policy,
		})
	case ProviderOpenAIResponses:
		eng, err = responses.New(responses.Config{
			Model:        e.Model,
			BaseURL:      e.BaseURL,
			APIKey:       key,
			APIKeyHeader: e.opts.APIKeyHeader,
			Headers:      e.opts.Headers,
			Query:        e.opts.Query,
			Params:       params,
			Policy:       policy,
		})
	case ProviderAnthropic:
		eng, err = anthropic.New(anthropic.Config{
			Model:             e.Model,
			BaseURL:           e.BaseURL,
			APIKey:            key,
			Headers:           e.opts.Headers,
			Params:            params,
			PassthroughParams: e.opts.PassthroughParams,
			Policy:            policy,
		})
	case ProviderSim:
		eng = &simEngine{Engine: sim.New(), defaults: params}
	default:
		return nil, fmt.Errorf("unknown provider %q", e.Provider)
	}
	if err != nil {
		return nil, err
	}
	// Bad default params fail at startup, not in every job.
	if err := eng.Validate(nil); err != nil {
		return nil, fmt.Errorf("options.params: %w", err)
	}
	return eng, nil
}

// simEngine is the simulator with an entry's default params.
type simEngine struct {
	*sim.Engine
	defaults map[string]json.RawMessage
}

func (s *simEngine) Stream(ctx context.Context, req engine.Request, emit engine.Emit) (engine.Finish, error) {
	req.Params = upstream.MergeParams(s.defaults, req.Params)
	return s.Engine.Stream(ctx, req, emit)
}

func (s *simEngine) Validate(params map[string]json.RawMessage) error {
	return s.Engine.Validate(upstream.MergeParams(s.defaults, params))
}

func (s *simEngine) MinRuntime(params map[string]json.RawMessage) time.Duration {
	return s.Engine.MinRuntime(upstream.MergeParams(s.defaults, params))
}

// options are an entry's options; see engines.example.yaml.
type options struct {
	Params         map[string]any    `yaml:"params"`
	Headers        map[string]string `yaml:"headers"`
	Timeout        *Duration         `yaml:"timeout"`
	IdleTimeout    *Duration         `yaml:"idle_timeout"`
	MaxRetries     *int              `yaml:"max_retries"`
	RetryBaseDelay *Duration         `yaml:"retry_base_delay"`
	MaxRetryDelay  *Duration         `yaml:"max_retry_delay"`

	// openai only
	MaxTokensParam string `yaml:"max_tokens_param"`
	IncludeUsage   *bool  `yaml:"include_usage"`

	// openai and openai-responses only
	Query        map[string]string `yaml:"query"`
	APIKeyHeader string            `yaml:"api_key_header"`

	// anthropic only
	PassthroughParams []string `yaml:"passthrough_params"`
}

// params returns the default params as raw JSON values.
func (o *options) params() (map[string]json.RawMessage, error) {
	if len(o.Params) == 0 {
		return nil, nil
	}
	out := make(map[string]json.RawMessage, len(o.Params))
	for k, v := range o.Params {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("options.params.%s: not representable as JSON: %v", k, err)
		}
		out[k] = b
	}
	return out, nil
}

// policy maps the options onto upstream.Policy, whose zero values mean
// "default": an explicit 0 in the file means "none" instead.
func (o *options) policy() upstream.Policy {
	var p upstream.Policy
	if o.Timeout != nil {
		p.Timeout = time.Duration(*o.Timeout)
	}
	if o.IdleTimeout != nil {
		p.IdleTimeout = time.Duration(*o.IdleTimeout)
		if p.IdleTimeout == 0 {
			p.IdleTimeout = -1
		}
	}
	if o.MaxRetries != nil {
		p.MaxRetries = *o.MaxRetries
		if p.MaxRetries == 0 {
			p.MaxRetries = -1
		}
	}
	if o.RetryBaseDelay != nil {
		p.RetryBaseDelay = time.Duration(*o.RetryBaseDelay)
	}
	if o.MaxRetryDelay != nil {
		p.MaxRetryDelay = time.Duration(*o.MaxRetryDelay)
	}
	return p
}

type fileYAML struct {
	Engines []entryYAML `yaml:"engines"`
}

type entryYAML struct {
	ID        string  `yaml:"id"`
	Provider  string  `yaml:"provider"`
	Model     string  `yaml:"model"`
	BaseURL   string  `yaml:"base_url"`
	APIKeyEnv string  `yaml:"api_key_env"`
	Options   options `yaml:"options"`
}

// Duration is a YAML duration written with a unit, such as 90s or 2m.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 90s or 2m", n.Line)
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration; write one with a unit, such as 90s or 2m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// entryLines returns the line of each item of the top-level engines list.
func entryLines(content []byte) []int {
	var root yaml.Node
	if yaml.Unmarshal(content, &root) != nil || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "engines" {
			var lines []int
			for _, item := range m.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type engineconfig\.(\w+)`)

// yamlError rewords yaml.v3's errors for people: unknown keys are named as
// such rather than by Go type.
func yamlError(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "yaml: ")
	}
	types := strings.NewReplacer(
		"[]engineconfig.entryYAML", "a list of engines",
		"engineconfig.entryYAML", "an engine",
		"engineconfig.options", "options",
		"engineconfig.fileYAML", "an engines file",
	)
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = unknownField.ReplaceAllStringFunc(m, func(s string) string {
			sub := unknownField.FindStringSubmatch(s)
			where := map[string]string{"fileYAML": "at the top level", "entryYAML": "in an engine", "options": "in options"}[sub[2]]
			return fmt.Sprintf("unknown key %q %s", sub[1], where)
		})
		msgs[i] = types.Replace(msgs[i])
	}
	return strings.Join(msgs, "; ")
}
