package openapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Spec is the parsed document, for checking requests and responses
// against it in tests. There is no JSON Schema validator among the
// module's dependencies, and a new one is not worth it for tests, so
// Check implements the subset of JSON Schema the document uses: $ref,
// type (one or a list), required, properties, additionalProperties: false,
// items, enum and const.
type Spec struct{ doc map[string]any }

// Parse parses the embedded document.
func Parse() (*Spec, error) {
	var doc map[string]any
	if err := json.Unmarshal(document, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.json: %w", err)
	}
	return &Spec{doc: doc}, nil
}

// Operations returns every documented "METHOD path", sorted.
func (s *Spec) Operations() []string {
	var out []string
	paths, _ := s.doc["paths"].(map[string]any)
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				out = append(out, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// RequestSchema returns the schema of the request body of method path in
// contentType.
func (s *Spec) RequestSchema(method, path, contentType string) (any, error) {
	op, err := s.operation(method, path)
	if err != nil {
		return nil, err
	}
	body, err := s.deref(op["requestBody"])
	if err != nil || body == nil {
		return nil, fmt.Errorf("%s %s: no request body: %v", method, path, err)
	}
	return s.mediaSchema(body, contentType, method+" "+path+" request")
}

// ResponseSchema returns the schema of method path's response with status
// in contentType.
func (s *Spec) ResponseSchema(method, path string, status int, contentType string) (any, error) {
	op, err := s.operation(method, path)
	if err != nil {
		return nil, err
	}
	responses, _ := op["responses"].(map[string]any)
	res, err := s.deref(responses[fmt.Sprint(status)])
	if err != nil || res == nil {
		return nil, fmt.Errorf("%s %s: status %d is not documented", method, path, status)
	}
	return s.mediaSchema(res, contentType, fmt.Sprintf("%s %s %d", method, path, status))
}

func (s *Spec) operation(method, path string) (map[string]any, error) {
	paths, _ := s.doc["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	if op == nil {
		return nil, fmt.Errorf("%s %s is not documented", method, path)
	}
	return op, nil
}

func (s *Spec) mediaSchema(v map[string]any, contentType, what string) (any, error) {
	content, _ := v["content"].(map[string]any)
	media, _ := content[contentType].(map[string]any)
	if media == nil {
		return nil, fmt.Errorf("%s: no %s content", what, contentType)
	}
	return media["schema"], nil
}

// deref follows v's $ref, if any, to an object of the document.
func (s *Spec) deref(v any) (map[string]any, error) {
	for range 16 {
		m, _ := v.(map[string]any)
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		var err error
		if v, err = Resolve(s.doc, ref); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("$ref chain too long")
}

// Resolve returns what the local reference ref ("#/components/...")
// points to in doc.
func Resolve(doc map[string]any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var v any = doc
	for _, part := range strings.Split(rest, "/") {
		part, _ = url.PathUnescape(strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~"))
		m, _ := v.(map[string]any)
		if v, ok = m[part]; !ok {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
	}
	return v, nil
}

// Check reports the first way in which the JSON value body does not
// conform to schema.
func (s *Spec) Check(schema any, body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.check("$", schema, v)
}

// CheckValue is Check of a decoded value (from encoding/json into any).
func (s *Spec) CheckValue(schema, v any) error { return s.check("$", schema, v) }

func (s *Spec) check(at string, schema, v any) error {
	sch, err := s.deref(schema)
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	if sch == nil {
		return nil
	}
	if types := typesOf(sch["type"]); len(types) > 0 && !slices.ContainsFunc(types, func(t string) bool { return isType(v, t) }) {
		return fmt.Errorf("%s: %s is not of type %s", at, brief(v), strings.Join(types, " or "))
	}
	if c, ok := sch["const"]; ok && !equal(c, v) {
		return fmt.Errorf("%s: %s is not %v", at, brief(v), c)
	}
	if enum, ok := sch["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return equal(e, v) }) {
		return fmt.Errorf("%s: %s is not one of %v", at, brief(v), enum)
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := sch["properties"].(map[string]any)
		required, _ := sch["required"].([]any)
		for _, r := range required {
			if _, ok := v[r.(string)]; !ok {
				return fmt.Errorf("%s: required property %q is missing", at, r)
			}
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p, ok := props[k]
			if !ok {
				if ap, ok := sch["additionalProperties"].(bool); ok && !ap {
					return fmt.Errorf("%s: property %q is not allowed", at, k)
				}
				continue
			}
			if err := s.check(at+"."+k, p, v[k]); err != nil {
				return err
			}
		}
	case []any:
		if items, ok := sch["items"]; ok {
			for i, e := range v {
				if err := s.check(fmt.Sprintf("%s[%d]", at, i), items, e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func typesOf(t any) []string {
	switch t := t.(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			out = append(out, e.(string))
		}
		return out
	}
	return nil
}

func isType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func equal(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func brief(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		b = append(b[:77], "..."...)
	}
	return string(b)
}

// Object returns schema with its $ref followed.
func (s *Spec) Object(schema any) (map[string]any, error) { return s.deref(schema) }
