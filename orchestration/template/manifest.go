package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The TaskTemplate custom resource, as written in manifests.
const (
	// Group is the API group of Tasker's custom resources.
	Group = "workflows.tasker.dev"
	// APIVersion is the only version of TaskTemplate this package reads.
	APIVersion = Group + "/v1alpha1"
	// Kind is the kind of the TaskTemplate custom resource.
	Kind = "TaskTemplate"
	// kindWorkerPool is the other kind of the group; its documents are skipped.
	kindWorkerPool = "WorkerPool"
)

// maxObjectNameLen is the Kubernetes limit on metadata.name (a DNS-1123 subdomain).
const maxObjectNameLen = 253

// objectNamePattern is a DNS-1123 subdomain: lowercase alphanumeric labels of
// '-' joined by '.'.
var objectNamePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// ObjectMeta is the part of a Kubernetes object's metadata that a TaskTemplate
// manifest needs. Other metadata (labels, annotations) is accepted and ignored.
type ObjectMeta struct {
	// Name is the name of the resource, a DNS-1123 subdomain. Required.
	Name string `json:"name"`
	// Namespace is the Kubernetes namespace of the resource. Optional.
	Namespace string `json:"namespace,omitempty"`
}

// Manifest is one TaskTemplate custom resource: a Kubernetes object whose spec
// is a [Definition].
type Manifest struct {
	// APIVersion is always [APIVersion] in manifests returned by [ParseManifests].
	APIVersion string `json:"apiVersion"`
	// Kind is always [Kind] in manifests returned by [ParseManifests].
	Kind string `json:"kind"`
	// Metadata names the resource.
	Metadata ObjectMeta `json:"metadata"`
	// Spec is the workflow template.
	Spec Definition `json:"spec"`
}

// Definition returns the spec with its name defaulted to metadata.name, as the
// TaskTemplate controller registers it. The result shares memory with m.
func (m Manifest) Definition() Definition {
	def := m.Spec
	if def.Name == "" {
		def.Name = m.Metadata.Name
	}
	return def
}

// ParseManifests reads the TaskTemplates of a file: multi-document YAML
// (documents separated by "---" lines) or a stream of JSON objects. A
// Kubernetes List (apiVersion v1, kind List, as `kubectl get -o yaml` writes)
// contributes its items.
//
// Documents that are empty, of another API group (a Kustomization, a Secret)
// or WorkerPools are skipped without error, so a whole directory of manifests
// can be read. A document of the workflows.tasker.dev group that is not a
// TaskTemplate of version v1alpha1, a document without apiVersion and kind,
// malformed YAML or JSON, and any unknown or mistyped field are errors. Spec
// fields are matched exactly (case-sensitive), as the API server does.
//
// spec.name defaults to metadata.name. The specs are not validated: call
// [Definition.Validate] on [Manifest.Definition].
//
// Every document is read even when some fail: the result holds the manifests
// that parsed, in file order, and the error joins one *[DocumentError] per
// document that did not.
func ParseManifests(data []byte) ([]Manifest, error) {
	var manifests []Manifest
	var errs []error
	for _, doc := range splitDocuments(data) {
		m, ok, err := doc.manifests()
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			manifests = append(manifests, m...)
		}
	}
	return manifests, errors.Join(errs...)
}

// DocumentError says which document of a file could not be read and why.
type DocumentError struct {
	// Document is the 1-based position of the document in the file.
	Document int
	// Line is the 1-based line of the file where the document starts.
	Line int
	// Item is the 1-based position in a List document, or 0.
	Item int
	// Object is "Kind name" when the document got that far, else empty.
	Object string
	// Err is what is wrong.
	Err error
}

// Error renders "document 2 (line 14, TaskTemplate linear-workflow): reason".
func (e *DocumentError) Error() string {
	var where strings.Builder
	fmt.Fprintf(&where, "document %d (line %d", e.Document, e.Line)
	if e.Item > 0 {
		fmt.Fprintf(&where, ", item %d", e.Item)
	}
	if e.Object != "" {
		where.WriteString(", " + e.Object)
	}
	return where.String() + "): " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *DocumentError) Unwrap() error { return e.Err }

// envelope is what every Kubernetes object has, with the spec left raw for
// strict decoding.
type envelope struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
	// Status is accepted (kubectl get writes it) and ignored.
	Status json.RawMessage `json:"status"`
}

// list is a Kubernetes List, as `kubectl get -o yaml` writes several objects.
type list struct {
	Items []json.RawMessage `json:"items"`
}

// manifests decodes the document. ok is false for documents that are empty,
// skipped or failed; a List yields the TaskTemplates among its items.
func (d document) manifests() ([]Manifest, bool, error) {
	if d.err != nil {
		return nil, false, d.wrap("", d.err)
	}
	if len(d.raw) == 0 {
		return nil, false, nil
	}
	var env envelope
	if err := decodeEnvelope(d.raw, &env); err != nil {
		return nil, false, d.wrap("", err)
	}
	if env.APIVersion == "v1" && env.Kind == "List" {
		var l list
		if err := json.Unmarshal(d.raw, &l); err != nil {
			return nil, false, d.wrap("List", fmt.Errorf("items: %w", err))
		}
		return d.listItems(l.Items)
	}
	object := strings.TrimSpace(env.Kind + " " + objectName(env.Metadata))
	if skip, err := checkType(env.APIVersion, env.Kind); skip || err != nil {
		return nil, false, d.wrap(object, withClassicHint(d.raw, err))
	}
	m, err := decodeManifest(d.raw, env)
	if err != nil {
		return nil, false, d.wrap(object, err)
	}
	return []Manifest{m}, true, nil
}

// listItems reads the items of a List document as documents of their own.
func (d document) listItems(items []json.RawMessage) ([]Manifest, bool, error) {
	var manifests []Manifest
	var errs []error
	for i, raw := range items {
		item := document{index: d.index, line: d.line, item: i + 1, raw: raw}
		m, ok, err := item.manifests()
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			manifests = append(manifests, m...)
		}
	}
	return manifests, len(manifests) > 0, errors.Join(errs...)
}

// wrap returns err as a *DocumentError about d, or nil when err is nil.
func (d document) wrap(object string, err error) error {
	if err == nil {
		return nil
	}
	return &DocumentError{Document: d.index, Line: d.line, Item: d.item, Object: object, Err: err}
}

// checkType decides from apiVersion and kind whether a document is a
// TaskTemplate to read (false, nil), an object to skip (true, nil) or an error.
func checkType(apiVersion, kind string) (bool, error) {
	if apiVersion == "" || kind == "" {
		return false, errors.New("apiVersion and kind are required: this is not a Kubernetes object")
	}
	group, _, _ := strings.Cut(apiVersion, "/")
	if group != Group && kind != Kind {
		return true, nil // another API's object, such as a Kustomization
	}
	switch {
	case kind == Kind && apiVersion != APIVersion:
		return false, fmt.Errorf("apiVersion %q is not supported for kind %s: want %s", apiVersion, Kind, APIVersion)
	case kind == Kind:
		return false, nil
	case kind == kindWorkerPool:
		return true, nil
	default:
		return false, fmt.Errorf("unknown kind %q in API group %s: want %s or %s", kind, Group, Kind, kindWorkerPool)
	}
}

// decodeManifest decodes the TaskTemplate document raw, whose envelope is env:
// strictly (no unknown top-level or spec fields), with spec.name defaulted to
// metadata.name.
func decodeManifest(raw json.RawMessage, env envelope) (Manifest, error) {
	m := Manifest{APIVersion: env.APIVersion, Kind: env.Kind}
	if err := decodeStrict(raw, &envelope{}, ""); err != nil {
		return m, err
	}
	if isUnsetRaw(env.Metadata) {
		return m, errors.New("metadata.name is required")
	}
	if err := json.Unmarshal(env.Metadata, &m.Metadata); err != nil {
		return m, fmt.Errorf("metadata: %w", err)
	}
	if err := checkObjectName(m.Metadata.Name); err != nil {
		return m, err
	}
	if isUnsetRaw(env.Spec) {
		return m, errors.New("spec is required")
	}
	if err := decodeStrict(env.Spec, &m.Spec, "spec"); err != nil {
		return m, err
	}
	if m.Spec.Name == "" {
		m.Spec.Name = m.Metadata.Name
	}
	return m, nil
}

// checkObjectName validates metadata.name as the API server would.
func checkObjectName(name string) error {
	switch {
	case name == "":
		return errors.New("metadata.name is required")
	case len(name) > maxObjectNameLen:
		return fmt.Errorf("metadata.name must be at most %d characters, got %d", maxObjectNameLen, len(name))
	case !objectNamePattern.MatchString(name):
		return fmt.Errorf("metadata.name %q must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', "+
			"starting and ending with a letter or digit", name)
	}
	return nil
}

// objectName returns metadata.name when it can be read, for messages.
func objectName(metadata json.RawMessage) string {
	var meta ObjectMeta
	_ = json.Unmarshal(metadata, &meta) // best effort: only used in messages
	return meta.Name
}

// withClassicHint adds a pointer to `tasker template convert` to err when raw
// looks like a classic tasker template.
func withClassicHint(raw []byte, err error) error {
	if err == nil {
		return nil
	}
	for _, key := range []string{`"namespace_name"`, `"step_templates"`, `"task_handler_class"`} {
		if bytes.Contains(raw, []byte(key)) {
			return fmt.Errorf("%w (this looks like a classic tasker template: convert it with `tasker template convert`)", err)
		}
	}
	return err
}
