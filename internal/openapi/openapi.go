// Package openapi holds the OpenAPI 3.1 document of every HTTP route that
// `jobstream serve` answers (openapi.json, embedded), and serves it at
// GET /openapi.json. The document is the HTTP reference: the route table
// in internal/server/routes.go is checked against it by a test, so that a
// route cannot be added, or removed, without the document saying so.
//
// The file is hand-written JSON, so that no generator or build step
// stands between it and what is served.
package openapi

import (
	_ "embed"
	"net/http"
)

//go:embed openapi.json
var document []byte

// Document returns the OpenAPI document's bytes (a copy: callers may
// change it).
func Document() []byte { return append([]byte(nil), document...) }

// Handler serves the document, unauthenticated: it describes the API,
// holds no data, and clients read it before they have a key.
func Handler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(document)
}
