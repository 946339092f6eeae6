package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Error is an error answer of the API, as the Client returns it.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the API's error code, e.g. INVALID_CONTEXT (one of the Code*
	// constants). For an answer that is not the API's JSON error (e.g. from
	// a proxy) it is the status text in capitals, e.g. BAD_GATEWAY.
	Code string
	// Message says what went wrong, for people.
	Message string
	// Details are the error's details: for INVALID_CONTEXT objects with path
	// and message, for INVALID_REQUEST objects with field and message, for
	// DUPLICATE_TASK an object with existing_task_uuid.
	Details []json.RawMessage
}

// Error returns "CODE (status): message", followed by the details that the
// message does not already say.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d): %s", e.Code, e.Status, e.Message)
	var extra []string
	for _, d := range e.Details {
		if text := describeDetail(d); !strings.Contains(e.Message, text) {
			extra = append(extra, text)
		}
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, " [%s]", strings.Join(extra, "; "))
	}
	return b.String()
}

// describeDetail renders one detail as "where: message", or as its JSON.
func describeDetail(raw json.RawMessage) string {
	var d struct {
		Path             string `json:"path"`
		Field            string `json:"field"`
		Message          string `json:"message"`
		ExistingTaskUUID string `json:"existing_task_uuid"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return string(raw)
	}
	switch {
	case d.Path != "":
		return d.Path + ": " + d.Message
	case d.Field != "":
		return d.Field + ": " + d.Message
	case d.ExistingTaskUUID != "":
		return "existing task " + d.ExistingTaskUUID
	}
	return string(raw)
}

// maxErrorBody bounds how much of an error answer the client reads.
const maxErrorBody = 64 << 10

// decodeError reads an error answer. A body that is not the API's error
// JSON becomes the message, cut short.
func decodeError(resp *http.Response) *Error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var envelope struct {
		Error struct {
			Code    string            `json:"code"`
			Message string            `json:"message"`
			Details []json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &envelope) == nil && envelope.Error.Code != "" {
		return &Error{
			Status: resp.StatusCode, Code: envelope.Error.Code,
			Message: envelope.Error.Message, Details: envelope.Error.Details,
		}
	}
	message := strings.TrimSpace(string(data))
	if len(message) > 512 {
		message = strings.ToValidUTF8(message[:512], "") + "…"
	}
	if message == "" {
		message = http.StatusText(resp.StatusCode)
	}
	code := strings.ToUpper(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))
	if code == "" {
		code = fmt.Sprintf("HTTP_%d", resp.StatusCode)
	}
	return &Error{Status: resp.StatusCode, Code: code, Message: message}
}
