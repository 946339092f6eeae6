package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/orchestration"
)

// createTaskBody is the body of POST /v1/tasks as the server reads it.
// It mirrors CreateTaskRequest, except that correlation_id is read as text
// so that a malformed one is reported as an invalid field.
type createTaskBody struct {
	Namespace      string          `json:"namespace"`
	Name           string          `json:"name"`
	Version        string          `json:"version"`
	Context        json.RawMessage `json:"context"`
	Initiator      string          `json:"initiator"`
	SourceSystem   string          `json:"source_system"`
	Reason         string          `json:"reason"`
	Priority       int             `json:"priority"`
	IdempotencyKey string          `json:"idempotency_key"`
	CorrelationID  string          `json:"correlation_id"`
}

// request checks the fields the engine cannot, and returns the engine's
// request.
func (b createTaskBody) request() (CreateTaskRequest, error) {
	req := CreateTaskRequest{
		Namespace: b.Namespace, Name: b.Name, Version: b.Version, Context: b.Context,
		Initiator: b.Initiator, SourceSystem: b.SourceSystem, Reason: b.Reason,
		Priority: b.Priority, IdempotencyKey: b.IdempotencyKey,
	}
	if b.CorrelationID != "" {
		id, err := uuid.Parse(b.CorrelationID)
		if err != nil {
			return req, invalidRequest("correlation_id", "must be a UUID")
		}
		req.CorrelationID = id
	}
	if bytes.Equal(bytes.TrimSpace(req.Context), []byte("null")) {
		req.Context = nil // null, like an absent context, means {}
	}
	return req, nil
}

// createTask serves POST /v1/tasks.
func (s *Server) createTask(w http.ResponseWriter, r *http.Request) error {
	var body createTaskBody
	if err := s.decodeBody(w, r, &body, false); err != nil {
		return err
	}
	req, err := body.request()
	if err != nil {
		return err
	}
	task, err := s.engine.CreateTask(r.Context(), req)
	if err != nil {
		return notFound(err, CodeTemplateNotFound)
	}
	s.metrics.tasksCreated.WithLabelValues(task.Namespace, task.Name).Inc()
	writeJSON(w, http.StatusCreated, newTaskWithSteps(task))
	return nil
}

// getTask serves GET /v1/tasks/{uuid}.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(r)
	if err != nil {
		return err
	}
	task, err := s.engine.GetTask(r.Context(), id)
	if err != nil {
		return notFound(err, CodeTaskNotFound)
	}
	writeJSON(w, http.StatusOK, newTaskWithSteps(task))
	return nil
}

// listTasks serves GET /v1/tasks?namespace=&status=&page=&per_page=.
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	page, err := queryInt(r, "page")
	if err != nil {
		return err
	}
	perPage, err := queryInt(r, "per_page")
	if err != nil {
		return err
	}
	query := r.URL.Query()
	list, err := s.engine.ListTasks(r.Context(), orchestration.ListTasksOptions{
		Namespace: query.Get("namespace"), State: query.Get("status"), Page: page, PerPage: perPage,
	})
	var invalid *orchestration.InvalidRequestError
	if errors.As(err, &invalid) && invalid.Field == "state" {
		// The engine's option is State; the API's parameter is status.
		return invalidRequest("status", invalid.Message)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newTaskList(list))
	return nil
}

// reasonBody is the optional body of DELETE /v1/tasks/{uuid} and of
// POST .../retry.
type reasonBody struct {
	Reason string `json:"reason"`
}

// resolveBody is the optional body of POST .../resolve.
type resolveBody struct {
	Result json.RawMessage `json:"result"`
	Reason string          `json:"reason"`
}

// cancelTask serves DELETE /v1/tasks/{uuid}.
func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(r)
	if err != nil {
		return err
	}
	var body reasonBody
	if err := s.decodeBody(w, r, &body, true); err != nil {
		return err
	}
	task, err := s.engine.CancelTask(r.Context(), id, body.Reason)
	if err != nil {
		return notFound(err, CodeTaskNotFound)
	}
	writeJSON(w, http.StatusOK, newTaskWithSteps(task))
	return nil
}

// retryStep serves POST /v1/tasks/{uuid}/steps/{step}/retry.
func (s *Server) retryStep(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(r)
	if err != nil {
		return err
	}
	var body reasonBody
	if err := s.decodeBody(w, r, &body, true); err != nil {
		return err
	}
	task, err := s.engine.RetryStep(r.Context(), id, r.PathValue("step"), body.Reason)
	if err != nil {
		return s.stepNotFound(r, id, err)
	}
	writeJSON(w, http.StatusOK, newTaskWithSteps(task))
	return nil
}

// resolveStep serves POST /v1/tasks/{uuid}/steps/{step}/resolve.
func (s *Server) resolveStep(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(r)
	if err != nil {
		return err
	}
	var body resolveBody
	if err := s.decodeBody(w, r, &body, true); err != nil {
		return err
	}
	if bytes.Equal(bytes.TrimSpace(body.Result), []byte("null")) {
		body.Result = nil // null, like no result, keeps the step's results
	}
	task, err := s.engine.ResolveStep(r.Context(), id, r.PathValue("step"), body.Result, body.Reason)
	if err != nil {
		return s.stepNotFound(r, id, err)
	}
	writeJSON(w, http.StatusOK, newTaskWithSteps(task))
	return nil
}

// stepNotFound tells apart, for an error matching ErrNotFound of a step
// operation, a missing task (TASK_NOT_FOUND) from a missing step
// (STEP_NOT_FOUND). Other errors pass through.
func (s *Server) stepNotFound(r *http.Request, taskUUID uuid.UUID, err error) error {
	if !errors.Is(err, orchestration.ErrNotFound) {
		return err
	}
	if _, lookupErr := s.engine.GetTask(r.Context(), taskUUID); errors.Is(lookupErr, orchestration.ErrNotFound) {
		return notFound(lookupErr, CodeTaskNotFound)
	}
	return notFound(err, CodeStepNotFound)
}
