package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/taskerops/tasker/orchestration/api"
)

// apiResponseError is an error answer of the API, printed as the status, the
// server's code and message, then one indented line per detail (unless the
// message already says it):
//
//	400 INVALID_CONTEXT: context does not match the input schema
//	  $.even_number: must be multiple of 2
type apiResponseError struct {
	err *api.Error
}

func (f *apiResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", f.err.Status, f.err.Code, f.err.Message)
	for _, d := range f.err.Details {
		if text := describeDetail(d); !strings.Contains(f.err.Message, text) {
			b.WriteString("\n  ")
			b.WriteString(text)
		}
	}
	return b.String()
}

func (f *apiResponseError) Unwrap() error { return f.err }

// describeDetail renders one element of an error's details: a string as
// itself, an object with a path (or field) and a message as "path: message",
// a duplicate's existing task as "existing task UUID", anything else as
// compact JSON.
func describeDetail(raw json.RawMessage) string {
	var text string
	if err := json.Unmarshal(raw, &text); err == nil {
		return text
	}
	var d struct {
		Path             string `json:"path"`
		Field            string `json:"field"`
		Message          string `json:"message"`
		ExistingTaskUUID string `json:"existing_task_uuid"`
	}
	if err := json.Unmarshal(raw, &d); err == nil {
		switch {
		case d.Message != "" && d.Path+d.Field != "":
			return d.Path + d.Field + ": " + d.Message
		case d.Message != "":
			return d.Message
		case d.ExistingTaskUUID != "":
			return "existing task " + d.ExistingTaskUUID
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return string(raw)
	}
	return compact.String()
}

// unreachableError says that no server answered at the URL, and how to
// point the command at one.
type unreachableError struct {
	server, reason string
	err            error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the tasker API at %s: %s\n  is the orchestrator running there? point --server (or TASKER_SERVER) at its API", e.server, e.reason)
}

func (e *unreachableError) Unwrap() error { return e.err }

// unreachable reports whether err says that no server answered at all, and
// why in a few words.
func unreachable(err error) (string, bool) {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the host", true
	case errors.As(err, &dnsErr):
		return "unknown host " + dnsErr.Name, true
	}
	return "", false
}

// isTimeout reports whether err is a request that ran out of time (and not
// the command being interrupted).
func isTimeout(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
