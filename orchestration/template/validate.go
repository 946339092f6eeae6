package template

import (
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/mod/semver"
)

// Limits enforced by [Definition.Validate].
const (
	// maxNamespaceLen keeps "pgmq.q_<ns>_queue_vt_idx" and its siblings within
	// PostgreSQL's 63-byte identifier limit.
	maxNamespaceLen = 40
	maxNameLen      = 128
	maxStepNameLen  = 63
	maxCallableLen  = 255
	maxSteps        = 500
	maxTimeoutSecs  = 86400
	maxAttemptsCap  = 100
	maxBackoffCapMs = 86_400_000
)

var (
	namespacePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	namePattern      = regexp.MustCompile(`^[a-z0-9_][a-z0-9_.-]*$`)
	stepNamePattern  = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	callablePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(([.]|::|/)[A-Za-z_][A-Za-z0-9_]*)*$`)
)

// Problem is one reason a definition is invalid.
type Problem struct {
	// Field is the path of the offending value relative to the definition, such as
	// "namespaceName" or "steps[2].dependsOn[0]". Callers that embed the definition
	// (the operator uses "spec.") prefix it themselves.
	Field string `json:"field"`
	// Message says what is wrong with the value, in words for people.
	Message string `json:"message"`
}

// String returns "field: message".
func (p Problem) String() string {
	return p.Field + ": " + p.Message
}

// ValidationError is returned by [Definition.Validate] and lists every problem
// found, in a stable order: top-level fields first, then steps in declaration order,
// then dependency cycles.
type ValidationError struct {
	// Problems holds at least one problem.
	Problems []Problem
}

// Error joins the problems with "; ".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// problems collects the findings of one validation run.
type problems []Problem

// addf records a problem for field with a formatted message.
func (ps *problems) addf(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Validate checks d after applying [Definition.WithDefaults] and returns nil or a
// *[ValidationError] listing every problem found, not only the first.
func (d Definition) Validate() error {
	d = d.WithDefaults()
	var ps problems
	ps.checkNamespace(d.NamespaceName)
	ps.checkName(d.Name)
	ps.checkVersion(d.Version)
	ps.checkIdentityStrategy(d.IdentityStrategy)
	ps.checkInputSchema(d)
	ps.checkSteps(d.Steps)
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// checkNamespace validates namespaceName, which also names the PGMQ queue.
func (ps *problems) checkNamespace(ns string) {
	const field = "namespaceName"
	switch {
	case ns == "":
		ps.addf(field, "is required")
	case len(ns) > maxNamespaceLen:
		ps.addf(field, "must be at most %d bytes, got %d: it names the PGMQ queue \"<ns>_queue\", "+
			"whose tables and indexes (such as pgmq.q_<ns>_queue_vt_idx) must fit PostgreSQL's "+
			"63-byte identifier limit", maxNamespaceLen, len(ns))
	case !namespacePattern.MatchString(ns):
		ps.addf(field, "%q must contain only lowercase letters, digits and underscores, "+
			"and must not start with a digit", ns)
	}
}

// checkName validates the template name.
func (ps *problems) checkName(name string) {
	const field = "name"
	switch {
	case name == "":
		ps.addf(field, "is required")
	case len(name) > maxNameLen:
		ps.addf(field, "must be at most %d bytes, got %d", maxNameLen, len(name))
	case !namePattern.MatchString(name):
		ps.addf(field, "%q must contain only lowercase letters, digits, '_', '.' and '-', "+
			"and must start with a letter, digit or '_'", name)
	}
}

// checkVersion validates that version is a full semantic version.
func (ps *problems) checkVersion(version string) {
	const field = "version"
	if version == "" {
		ps.addf(field, "is required")
		return
	}
	if !isSemanticVersion(version) {
		ps.addf(field, "%q is not a semantic version MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] "+
			"such as 1.0.0 (three numeric parts without leading zeros, no leading \"v\")", version)
	}
}

// isSemanticVersion reports whether v is a full semantic version without a "v" prefix.
func isSemanticVersion(v string) bool {
	if strings.HasPrefix(v, "v") || !semver.IsValid("v"+v) {
		return false
	}
	core, _, _ := strings.Cut(v, "+")
	core, _, _ = strings.Cut(core, "-")
	return strings.Count(core, ".") == 2
}

// checkIdentityStrategy validates the identity strategy after defaults.
func (ps *problems) checkIdentityStrategy(s IdentityStrategy) {
	if !s.IsValid() {
		ps.addf("identityStrategy", "must be one of %s, got %q", quoteAll(identityStrategies), s)
	}
}

// checkInputSchema validates that inputSchema, when set, compiles as a JSON Schema.
func (ps *problems) checkInputSchema(d Definition) {
	if isUnsetRaw(d.InputSchema) {
		return
	}
	if _, err := compileSchema(d.InputSchema); err != nil {
		ps.addf("inputSchema", "%v", err)
	}
}

// quoteAll renders values as a comma-separated list of quoted strings.
func quoteAll[T ~string](values []T) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(quoted, ", ")
}
