package api

import (
	"encoding/json"
	"net/http"
	"strings"
)

// handlerFunc handles one request; a returned error becomes the error
// answer (see problemFor).
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one entry of the API's route table.
type route struct {
	// method and path form the net/http pattern; path uses {name}
	// wildcards, as OpenAPI does.
	method, path string
	handle       handlerFunc
}

// pattern is the ServeMux pattern of the route.
func (rt route) pattern() string { return rt.method + " " + rt.path }

// needsToken reports whether the route is behind the bearer token: every
// /v1/ route is; probes, metrics and the OpenAPI document are not.
func needsToken(path string) bool { return strings.HasPrefix(path, "/v1/") }

// unmatchedRoute labels, in metrics and logs, requests that match no route.
const unmatchedRoute = "unmatched"

// routes is the route table: the single list of what the API serves. The
// OpenAPI document describes exactly these routes (a test checks it).
func (s *Server) routes() []route {
	return []route{
		{http.MethodPost, "/v1/tasks", s.createTask},
		{http.MethodGet, "/v1/tasks", s.listTasks},
		{http.MethodGet, "/v1/tasks/{uuid}", s.getTask},
		{http.MethodDelete, "/v1/tasks/{uuid}", s.cancelTask},
		{http.MethodPost, "/v1/tasks/{uuid}/steps/{step}/retry", s.retryStep},
		{http.MethodPost, "/v1/tasks/{uuid}/steps/{step}/resolve", s.resolveStep},
		{http.MethodGet, "/v1/templates", s.listTemplates},
		{http.MethodGet, "/v1/templates/{namespace}/{name}/{version}", s.getTemplate},
		{http.MethodGet, "/healthz", s.healthz},
		{http.MethodGet, "/readyz", s.readyz},
		{http.MethodGet, "/metrics", s.serveMetrics},
		{http.MethodGet, "/openapi.json", s.openAPI},
	}
}

// build assembles the handler: every route with its middleware on a
// ServeMux, and a fallback that answers unknown paths (404) and wrong
// methods (405) with JSON errors instead of the mux's plain text.
func (s *Server) build(routes []route) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.pattern(), s.wrap(rt.path, needsToken(rt.path), rt.handle))
	}
	fallback := s.wrap(unmatchedRoute, false, s.unmatched(mux))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			fallback.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// unmatched answers a request that matches no pattern. It asks the mux
// what it would have answered (404, or 405 with the allowed methods) and
// says the same in JSON. Under /v1/ the token is checked first, so that a
// client without it learns nothing about the routes.
func (s *Server) unmatched(mux *http.ServeMux) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if needsToken(r.URL.Path) {
			if err := s.authorize(w, r); err != nil {
				return err
			}
		}
		h, _ := mux.Handler(r)
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			return errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
				"%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, probe.header.Get("Allow"))
		}
		return errorf(http.StatusNotFound, CodeNotFound, "no route for %s %s", r.Method, r.URL.Path)
	}
}

// headerProbe is a ResponseWriter that keeps only the status and headers
// of what the mux's own fallback would answer.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(status int)      { p.status = status }

// writeJSON writes v as the JSON body with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only response types of this package reach here; they all encode.
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"INTERNAL","message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
