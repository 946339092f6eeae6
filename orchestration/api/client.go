package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Client calls the REST API. It is safe for concurrent use. Every method
// returns *Error when the server answers with an error.
type Client struct {
	baseURL string
	token   string
	hc      *http.Client
}

// defaultClientTimeout bounds each request of a Client built without an
// http.Client.
const defaultClientTimeout = 30 * time.Second

// NewClient returns a client of the API at baseURL (e.g.
// "http://localhost:8080"). token, when set, is sent as a bearer token. hc
// nil means an http.Client with a 30s timeout.
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: defaultClientTimeout}
	}
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), token: token, hc: hc}
}

// ListOptions filters and pages ListTasks; zero values mean no filter and
// the server's default paging.
type ListOptions struct {
	Namespace string
	// Status is a task state, e.g. "complete".
	Status  string
	Page    int
	PerPage int
}

// CreateTask creates a task.
func (c *Client) CreateTask(ctx context.Context, req CreateTaskRequest) (*Task, error) {
	return call[Task](ctx, c, http.MethodPost, "/v1/tasks", nil, req)
}

// GetTask returns a task with its steps.
func (c *Client) GetTask(ctx context.Context, taskUUID uuid.UUID) (*Task, error) {
	return call[Task](ctx, c, http.MethodGet, taskPath(taskUUID), nil, nil)
}

// ListTasks returns one page of tasks, newest first.
func (c *Client) ListTasks(ctx context.Context, opts ListOptions) (*TaskList, error) {
	query := url.Values{}
	setQuery(query, "namespace", opts.Namespace)
	setQuery(query, "status", opts.Status)
	if opts.Page != 0 {
		query.Set("page", strconv.Itoa(opts.Page))
	}
	if opts.PerPage != 0 {
		query.Set("per_page", strconv.Itoa(opts.PerPage))
	}
	return call[TaskList](ctx, c, http.MethodGet, "/v1/tasks", query, nil)
}

// CancelTask cancels a task that has not finished; reason may be empty.
func (c *Client) CancelTask(ctx context.Context, taskUUID uuid.UUID, reason string) (*Task, error) {
	return call[Task](ctx, c, http.MethodDelete, taskPath(taskUUID), nil, reasonBody{Reason: reason})
}

// RetryStep enqueues a failed step again with a fresh retry budget.
func (c *Client) RetryStep(ctx context.Context, taskUUID uuid.UUID, step, reason string) (*Task, error) {
	path := taskPath(taskUUID) + "/steps/" + url.PathEscape(step) + "/retry"
	return call[Task](ctx, c, http.MethodPost, path, nil, reasonBody{Reason: reason})
}

// ResolveStep marks a failed step as resolved by hand, optionally with the
// result its dependents should see.
func (c *Client) ResolveStep(ctx context.Context, taskUUID uuid.UUID, step string, result json.RawMessage, reason string) (*Task, error) {
	path := taskPath(taskUUID) + "/steps/" + url.PathEscape(step) + "/resolve"
	return call[Task](ctx, c, http.MethodPost, path, nil, resolveBody{Result: result, Reason: reason})
}

// ListTemplates returns the active templates, of one namespace when
// namespace is set.
func (c *Client) ListTemplates(ctx context.Context, namespace string) ([]Template, error) {
	query := url.Values{}
	setQuery(query, "namespace", namespace)
	list, err := call[TemplateList](ctx, c, http.MethodGet, "/v1/templates", query, nil)
	if err != nil {
		return nil, err
	}
	return list.Templates, nil
}

// GetTemplate returns one template, retired or not.
func (c *Client) GetTemplate(ctx context.Context, namespace, name, version string) (*Template, error) {
	path := "/v1/templates/" + url.PathEscape(namespace) + "/" + url.PathEscape(name) + "/" + url.PathEscape(version)
	return call[Template](ctx, c, http.MethodGet, path, nil, nil)
}

// Ready returns nil when the server is ready (GET /readyz).
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, &Status{})
}

// call sends one request and returns its decoded answer.
func call[T any](ctx context.Context, c *Client, method, path string, query url.Values, body any) (*T, error) {
	var out T
	if err := c.do(ctx, method, path, query, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func taskPath(taskUUID uuid.UUID) string { return "/v1/tasks/" + taskUUID.String() }

func setQuery(query url.Values, name, value string) {
	if value != "" {
		query.Set(name, value)
	}
}

// do sends one request and decodes the answer into out, or returns the
// error the server answered with.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	target := c.baseURL + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}
