package orchestration

import (
	"encoding/json"

	"github.com/taskerops/tasker/internal/dbsqlc"
	"github.com/taskerops/tasker/orchestration/template"
)

// The functions here turn a defaulted template.Definition into query
// arguments.

func insertTemplateParams(def template.Definition, definition []byte, fingerprint, owner string) dbsqlc.InsertTemplateParams {
	return dbsqlc.InsertTemplateParams{
		NamespaceName:    def.NamespaceName,
		Name:             def.Name,
		Version:          def.Version,
		Description:      def.Description,
		IdentityStrategy: string(def.IdentityStrategy),
		InputSchema:      nullableJSON(def.InputSchema),
		Definition:       definition,
		Fingerprint:      fingerprint,
		Owner:            owner,
	}
}

func updateTemplateParams(id int64, def template.Definition, definition []byte, fingerprint, owner string) dbsqlc.UpdateTemplateParams {
	return dbsqlc.UpdateTemplateParams{
		TemplateID:       id,
		Description:      def.Description,
		IdentityStrategy: string(def.IdentityStrategy),
		InputSchema:      nullableJSON(def.InputSchema),
		Definition:       definition,
		Fingerprint:      fingerprint,
		Owner:            owner,
	}
}

func templateStepsParams(id int64, def template.Definition) dbsqlc.InsertTemplateStepsParams {
	p := dbsqlc.InsertTemplateStepsParams{TemplateID: id}
	for i, step := range def.Steps {
		retry := step.Retry
		p.Names = append(p.Names, step.Name)
		p.Positions = append(p.Positions, int32(i))
		p.Descriptions = append(p.Descriptions, step.Description)
		p.Callables = append(p.Callables, step.Handler.Callable)
		p.Initializations = append(p.Initializations, nullableJSON(step.Handler.Initialization))
		p.Retryables = append(p.Retryables, *retry.Retryable)
		p.MaxAttempts = append(p.MaxAttempts, int32(retry.MaxAttempts))
		p.Backoffs = append(p.Backoffs, string(retry.Backoff))
		p.BackoffBaseMs = append(p.BackoffBaseMs, int32(retry.BackoffBaseMs))
		p.MaxBackoffMs = append(p.MaxBackoffMs, int32(retry.MaxBackoffMs))
		p.JitterPercents = append(p.JitterPercents, int32(*retry.JitterPercent))
		p.TimeoutSeconds = append(p.TimeoutSeconds, int32(step.TimeoutSeconds))
	}
	return p
}

func templateEdgesParams(id int64, def template.Definition) dbsqlc.InsertTemplateEdgesParams {
	p := dbsqlc.InsertTemplateEdgesParams{TemplateID: id, FromSteps: []string{}, ToSteps: []string{}}
	for _, step := range def.Steps {
		for _, parent := range step.DependsOn {
			p.FromSteps = append(p.FromSteps, parent)
			p.ToSteps = append(p.ToSteps, step.Name)
		}
	}
	return p
}

// nullableJSON maps an absent or JSON-null raw value to SQL NULL.
func nullableJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}
