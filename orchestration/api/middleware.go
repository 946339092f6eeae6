package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// wrap puts a route's handler behind the middleware: metrics and the debug
// request log (outermost, so they see every answer), panic recovery, and
// the bearer token when needsToken is set. route labels the metrics.
func (s *Server) wrap(route string, needsToken bool, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer s.observe(rec, r, route, start)
		defer s.recoverPanic(rec, r)
		if needsToken {
			if err := s.authorize(rec, r); err != nil {
				s.writeError(rec, r, err)
				return
			}
		}
		if err := h(rec, r); err != nil {
			s.writeError(rec, r, err)
		}
	})
}

// recoverPanic turns a panic of a handler into a logged 500 INTERNAL answer
// (when nothing was written yet), so that no request brings the server
// down. http.ErrAbortHandler keeps its meaning: abort the response.
func (s *Server) recoverPanic(rec *statusRecorder, r *http.Request) {
	value := recover()
	if value == nil {
		return
	}
	if value == http.ErrAbortHandler { //nolint:errorlint // the sentinel is compared, as net/http does
		panic(value)
	}
	s.logPanic(r, value, debug.Stack())
	if rec.status != 0 {
		// The answer has started; the status recorded is what the client saw.
		return
	}
	writeProblem(rec, errorf(http.StatusInternalServerError, CodeInternal, "internal server error"))
}

// observe counts the request and logs it at debug level.
func (s *Server) observe(rec *statusRecorder, r *http.Request, route string, start time.Time) {
	elapsed := time.Since(start)
	status := rec.statusCode()
	s.metrics.requests.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
		slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Duration("duration", elapsed))
}

// methodLabel keeps the method label's values few: methods a client makes
// up are counted as OTHER.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}

// authorize checks the bearer token, when the server has one. On failure it
// sets WWW-Authenticate and returns the 401 problem.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Token == "" {
		return nil
	}
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tasker"`)
		return errorf(http.StatusUnauthorized, CodeUnauthorized, "this API needs an Authorization: Bearer <token> header")
	}
	given := hashToken(strings.TrimSpace(token))
	if subtle.ConstantTimeCompare(given[:], s.tokenHash[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tasker", error="invalid_token"`)
		return errorf(http.StatusUnauthorized, CodeUnauthorized, "the bearer token is not valid")
	}
	return nil
}

// hashToken hashes a token so that comparing two takes the same time
// whatever their lengths.
func hashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusCode is the status answered, 200 when the handler wrote nothing.
func (w *statusRecorder) statusCode() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
