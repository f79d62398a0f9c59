package server

import "github.com/go-chi/chi/v5"

// Router exposes the route table to the package's external tests.
func (a *API) Router() chi.Routes { return a.router }
