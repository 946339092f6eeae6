package orchestration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/template"
)

// identity is the value that makes two task requests the same task.
type identity struct {
	hash  string
	byKey bool
}

// taskIdentity computes a task's identity hash from its template's
// strategy: an idempotency key always wins; strict hashes the template and
// the canonical context; always_unique is random; caller_provided requires
// a key.
func taskIdentity(tmpl dbsqlc.TaskerTemplate, req CreateTaskRequest, taskContext json.RawMessage) (identity, error) {
	scope := tmpl.NamespaceName + "\x00" + tmpl.Name
	if req.IdempotencyKey != "" {
		return identity{hash: hashOf("key", scope, req.IdempotencyKey), byKey: true}, nil
	}
	switch template.IdentityStrategy(tmpl.IdentityStrategy) {
	case template.IdentityCallerProvided:
		return identity{}, &InvalidRequestError{
			Field:   "idempotency_key",
			Message: fmt.Sprintf("is required: template %s uses the caller_provided identity strategy", templateKey(tmpl.NamespaceName, tmpl.Name, tmpl.Version)),
		}
	case template.IdentityAlwaysUnique:
		return identity{hash: hashOf("unique", uuid.NewString())}, nil
	default:
		canonical, err := canonicalJSON(taskContext)
		if err != nil {
			return identity{}, &InvalidRequestError{Field: "context", Message: err.Error()}
		}
		return identity{hash: hashOf("strict", scope, tmpl.Version, string(canonical))}, nil
	}
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalJSON re-encodes a JSON document with sorted object keys and
// without insignificant whitespace; numbers keep their exact text.
func canonicalJSON(raw json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("must be valid JSON: %w", err)
	}
	return json.Marshal(v)
}
