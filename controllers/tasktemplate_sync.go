package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	workflowsv1alpha1 "github.com/taskerops/tasker/api/v1alpha1"
	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/template"
)

// outcome is what one sync of a TaskTemplate found and did. The Ready
// condition, the Event and the requeue all follow from it.
type outcome struct {
	// Generation is the metadata.generation that was synced.
	Generation int64
	// Key is where the spec registers: its namespace name, name and version.
	Key workflowsv1alpha1.TemplateKey
	// StepCount is the number of steps of the spec.
	StepCount int32
	// Created and Changed say what the registration did to the database
	// (see orchestration.RegisterResult).
	Created, Changed bool
	// Retired is the key the resource registered before its key changed,
	// when this sync retired it.
	Retired *workflowsv1alpha1.TemplateKey
	// Deleting is true when the resource is being deleted and the sync
	// retired its template rather than registering it.
	Deleting bool
	// Err is nil when the spec is registered. Otherwise it is an
	// *invalidSpecError, an *orchestration.TemplateConflictError, or an
	// error of the database.
	Err error
}

// invalidSpecError lists what makes a spec unusable, each problem with the
// path of its field in the resource, such as "spec.steps[1].dependsOn[0]".
type invalidSpecError struct {
	Problems []template.Problem
}

// Error joins the problems as "field: message; field: message".
func (e *invalidSpecError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// syncState is what the sync steps of one reconcile share.
type syncState struct {
	tt    *workflowsv1alpha1.TaskTemplate
	def   template.Definition
	owner string
	out   outcome
}

// syncStep is one stage of a sync. The first step that fails ends the sync
// and its error becomes the outcome's.
type syncStep func(ctx context.Context, s *syncState) error

// sync validates the spec, registers it, and retires the key it replaced.
func (r *taskTemplateReconciler) sync(ctx context.Context, tt *workflowsv1alpha1.TaskTemplate) outcome {
	s := &syncState{tt: tt, def: tt.Definition(), owner: ownerOf(tt)}
	s.out = outcome{Generation: tt.Generation, Key: specKey(tt), StepCount: int32(len(tt.Spec.Steps))}
	for _, step := range []syncStep{validateSpec, r.register, r.retirePrevious} {
		if err := step(ctx, s); err != nil {
			s.out.Err = err
			break
		}
	}
	return s.out
}

// validateSpec checks what the API server's schema and CEL rules cannot:
// dependency cycles and the input JSON Schema among them. It runs before
// registration so that an invalid spec never reaches the database.
func validateSpec(_ context.Context, s *syncState) error {
	err := s.def.WithDefaults().Validate()
	if invalid, ok := errors.AsType[*template.ValidationError](err); ok {
		return specProblems(s.tt, invalid.Problems)
	}
	return err
}

// register upserts the definition through the engine's registration path.
func (r *taskTemplateReconciler) register(ctx context.Context, s *syncState) error {
	res, err := r.templates.Register(ctx, s.def, s.owner)
	if invalid, ok := errors.AsType[*template.ValidationError](err); ok {
		return specProblems(s.tt, invalid.Problems)
	}
	if err != nil {
		return err
	}
	s.out.Created, s.out.Changed = res.Created, res.Changed
	return nil
}

// retirePrevious retires the key the resource registered before, when
// spec.namespaceName, spec.name or spec.version has changed since.
func (r *taskTemplateReconciler) retirePrevious(ctx context.Context, s *syncState) error {
	prev := s.tt.Status.Registered
	if prev == nil || *prev == s.out.Key {
		return nil
	}
	retired, err := r.retireOwned(ctx, *prev, s.owner)
	if retired {
		key := *prev
		s.out.Retired = &key
	}
	return err
}

// retireAll retires every key a deleted resource may hold: the one its
// status recorded and the one its spec names (the status may be older than
// the last registration). It returns the keys it retired.
func (r *taskTemplateReconciler) retireAll(ctx context.Context, tt *workflowsv1alpha1.TaskTemplate) ([]workflowsv1alpha1.TemplateKey, error) {
	keys := []workflowsv1alpha1.TemplateKey{specKey(tt)}
	if prev := tt.Status.Registered; prev != nil && *prev != keys[0] {
		keys = append(keys, *prev)
	}
	var retired []workflowsv1alpha1.TemplateKey
	for _, key := range keys {
		ok, err := r.retireOwned(ctx, key, ownerOf(tt))
		if err != nil {
			return retired, err
		}
		if ok {
			retired = append(retired, key)
		}
	}
	return retired, nil
}

// retireOwned retires key when owner registered it and it is still active,
// and reports whether it did. A key that was never registered, or that
// another resource or the CLI holds, is left alone: a resource that lost a
// Conflict must not retire the winner's template. (Register refuses to
// hand an active key to another owner, so the owner cannot change between
// the read and the retirement unless someone else retires it in between.)
func (r *taskTemplateReconciler) retireOwned(ctx context.Context, key workflowsv1alpha1.TemplateKey, owner string) (bool, error) {
	row, err := r.templates.Get(ctx, key.NamespaceName, key.Name, key.Version)
	if errors.Is(err, orchestration.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading template %s: %w", keyString(key), err)
	}
	if row.Retired || row.Owner != owner {
		return false, nil
	}
	return r.templates.Retire(ctx, key.NamespaceName, key.Name, key.Version)
}

// specProblems turns the engine's problems, whose fields are relative to
// the definition, into problems that name fields of the resource.
func specProblems(tt *workflowsv1alpha1.TaskTemplate, problems []template.Problem) *invalidSpecError {
	out := make([]template.Problem, len(problems))
	for i, p := range problems {
		out[i] = template.Problem{Field: resourceField(tt.Spec.Name, p.Field), Message: p.Message}
	}
	return &invalidSpecError{Problems: out}
}

// resourceField returns the path in the resource of a definition field.
// The template name comes from metadata.name when spec.name is empty, and
// then that is what must change.
func resourceField(specName, field string) string {
	switch {
	case field == "":
		return "spec"
	case field == "name" && specName == "":
		return "metadata.name (used as spec.name, which is empty)"
	default:
		return "spec." + field
	}
}

// specKey returns the key the spec registers under.
func specKey(tt *workflowsv1alpha1.TaskTemplate) workflowsv1alpha1.TemplateKey {
	def := tt.Definition()
	return workflowsv1alpha1.TemplateKey{NamespaceName: def.NamespaceName, Name: def.Name, Version: def.Version}
}

// keyString writes a key as the engine does: "namespaceName/name@version".
func keyString(k workflowsv1alpha1.TemplateKey) string {
	return k.NamespaceName + "/" + k.Name + "@" + k.Version
}

// ownerOf names a resource as the owner of the templates it registers.
func ownerOf(tt *workflowsv1alpha1.TaskTemplate) string {
	return "k8s:" + tt.Namespace + "/" + tt.Name
}
