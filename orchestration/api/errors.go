package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/taskerops/tasker/orchestration"
)

// Error codes of the API's error bodies.
const (
	CodeInvalidRequest   = "INVALID_REQUEST"
	CodeInvalidContext   = "INVALID_CONTEXT"
	CodeUnauthorized     = "UNAUTHORIZED"
	CodeNotFound         = "NOT_FOUND"
	CodeTaskNotFound     = "TASK_NOT_FOUND"
	CodeStepNotFound     = "STEP_NOT_FOUND"
	CodeTemplateNotFound = "TEMPLATE_NOT_FOUND"
	CodeTemplateRetired  = "TEMPLATE_RETIRED"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodeDuplicateTask    = "DUPLICATE_TASK"
	CodeInvalidState     = "INVALID_STATE"
	CodeTemplateConflict = "TEMPLATE_CONFLICT"
	CodePayloadTooLarge  = "PAYLOAD_TOO_LARGE"
	CodeCancelled        = "CANCELLED"
	CodeInternal         = "INTERNAL"
	CodeNotReady         = "NOT_READY"
)

// statusClientClosedRequest is the status recorded when the client went
// away before the answer was ready (nginx's 499).
const statusClientClosedRequest = 499

// problem is an error answer: status, code, message and details.
type problem struct {
	status  int
	code    string
	message string
	details []any
}

func (p *problem) Error() string { return p.code + ": " + p.message }

// errorEnvelope is the JSON body of every error answer.
type errorEnvelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []any  `json:"details,omitempty"`
}

// invalidRequest is a 400 INVALID_REQUEST about one field.
func invalidRequest(field, message string) *problem {
	return &problem{
		status: http.StatusBadRequest, code: CodeInvalidRequest,
		message: field + ": " + message, details: []any{FieldDetail{Field: field, Message: message}},
	}
}

// notFound turns an engine error matching ErrNotFound into a 404 with code;
// other errors pass through.
func notFound(err error, code string) error {
	if errors.Is(err, orchestration.ErrNotFound) && !errors.Is(err, orchestration.ErrTemplateRetired) {
		return &problem{status: http.StatusNotFound, code: code, message: err.Error()}
	}
	return err
}

// problemFor maps an error of a handler or of the engine to its answer.
func problemFor(err error) *problem {
	fields := invalidFields(err)
	var (
		p         *problem
		invalid   *orchestration.InvalidContextError
		duplicate *orchestration.DuplicateTaskError
		state     *orchestration.StateConflictError
		conflict  *orchestration.TemplateConflictError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &invalid):
		return invalidContext(invalid)
	case len(fields) > 0:
		return invalidRequestOf(fields)
	case errors.As(err, &duplicate):
		return &problem{
			status: http.StatusConflict, code: CodeDuplicateTask, message: err.Error(),
			details: []any{DuplicateDetail{ExistingTaskUUID: duplicate.ExistingTaskUUID}},
		}
	case errors.As(err, &state):
		return &problem{status: http.StatusConflict, code: CodeInvalidState, message: err.Error()}
	case errors.As(err, &conflict):
		return &problem{status: http.StatusConflict, code: CodeTemplateConflict, message: err.Error()}
	case errors.Is(err, orchestration.ErrTemplateRetired):
		return &problem{status: http.StatusNotFound, code: CodeTemplateRetired, message: err.Error()}
	case errors.Is(err, orchestration.ErrNotFound):
		return &problem{status: http.StatusNotFound, code: CodeNotFound, message: err.Error()}
	case errors.Is(err, context.Canceled):
		return &problem{status: statusClientClosedRequest, code: CodeCancelled, message: "the request was cancelled"}
	}
	return &problem{status: http.StatusInternalServerError, code: CodeInternal, message: "internal server error"}
}

// invalidContext is the 400 answer for a context that fails the template's
// input schema: the message names the template, the details are the
// violations, each with its JSON path.
func invalidContext(invalid *orchestration.InvalidContextError) *problem {
	details := make([]any, len(invalid.Violations))
	for i, v := range invalid.Violations {
		details[i] = v
	}
	return &problem{
		status: http.StatusBadRequest, code: CodeInvalidContext, details: details,
		message: "the context does not match the input schema of " + invalid.Template,
	}
}

// invalidFields collects every *InvalidRequestError in err's tree (the
// engine joins several with errors.Join).
func invalidFields(err error) []*orchestration.InvalidRequestError {
	// The tree is walked by hand: errors.As would stop at the first match.
	if invalid, ok := err.(*orchestration.InvalidRequestError); ok { //nolint:errorlint // see above
		return []*orchestration.InvalidRequestError{invalid}
	}
	switch e := err.(type) { //nolint:errorlint // see above
	case interface{ Unwrap() []error }:
		var found []*orchestration.InvalidRequestError
		for _, inner := range e.Unwrap() {
			found = append(found, invalidFields(inner)...)
		}
		return found
	case interface{ Unwrap() error }:
		return invalidFields(e.Unwrap())
	}
	return nil
}

// invalidRequestOf is the 400 answer for invalid request fields.
func invalidRequestOf(fields []*orchestration.InvalidRequestError) *problem {
	messages := make([]string, len(fields))
	details := make([]any, len(fields))
	for i, f := range fields {
		messages[i] = f.Error()
		details[i] = FieldDetail{Field: f.Field, Message: f.Message}
	}
	return &problem{status: http.StatusBadRequest, code: CodeInvalidRequest, message: strings.Join(messages, "; "), details: details}
}

// writeError answers with the error's status and body, and logs what the
// client is not told: the cause of a server error.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	if p.status >= http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeProblem(w, p)
}

// writeProblem writes p as the response.
func writeProblem(w http.ResponseWriter, p *problem) {
	writeJSON(w, p.status, errorEnvelope{Error: errorBody{Code: p.code, Message: p.message, Details: p.details}})
}

// errorf is a problem with a formatted message.
func errorf(status int, code, format string, args ...any) *problem {
	return &problem{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// logPanic records a recovered panic with its stack.
func (s *Server) logPanic(r *http.Request, value any, stack []byte) {
	s.log.ErrorContext(r.Context(), "handler panicked", "method", r.Method, "path", r.URL.Path,
		"panic", fmt.Sprint(value), "stack", string(stack))
}
