package api

import (
	"errors"
	"net/http"
)

// listTemplates serves GET /v1/templates?namespace=&include_retired=.
func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) error {
	includeRetired, err := queryBool(r, "include_retired")
	if err != nil {
		return err
	}
	namespace := r.URL.Query().Get("namespace")
	if err := checkText("namespace", namespace); err != nil {
		return err
	}
	rows, err := s.engine.Templates().List(r.Context(), namespace, includeRetired)
	if err != nil {
		return err
	}
	list := TemplateList{Templates: make([]Template, len(rows))}
	for i, row := range rows {
		list.Templates[i] = newTemplate(row)
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// getTemplate serves GET /v1/templates/{namespace}/{name}/{version}, retired
// templates included.
func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) error {
	namespace, name, version := r.PathValue("namespace"), r.PathValue("name"), r.PathValue("version")
	err := errors.Join(checkText("namespace", namespace), checkText("name", name), checkText("version", version))
	if err != nil {
		return err
	}
	row, err := s.engine.Templates().Get(r.Context(), namespace, name, version)
	if err != nil {
		return notFound(err, CodeTemplateNotFound)
	}
	writeJSON(w, http.StatusOK, newTemplate(row))
	return nil
}
