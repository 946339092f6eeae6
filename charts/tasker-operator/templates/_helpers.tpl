{{/*
tasker.name is the application's name: app.kubernetes.io/name.
*/}}
{{- define "tasker.name" -}}
{{- default "tasker" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
tasker.fullname prefixes every object's name: the release name when it
already says tasker (release "tasker" gives tasker-manager,
tasker-orchestrator), else <release>-tasker. Kept short enough for the
suffixes that follow it.
*/}}
{{- define "tasker.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains (include "tasker.name" .) .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "tasker.name" .) | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
tasker.labels are on every object the chart renders.
*/}}
{{- define "tasker.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "tasker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "tasker.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tasker
{{- end }}

{{/*
tasker.selectorLabels selects one component's pods; call it with
(dict "root" $ "component" "manager").
*/}}
{{- define "tasker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tasker.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
tasker.componentLabels are the labels of one component's objects; call it
with (dict "root" $ "component" "manager").
*/}}
{{- define "tasker.componentLabels" -}}
{{ include "tasker.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
tasker.imageTag is image.tag, or the chart's appVersion.
*/}}
{{- define "tasker.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
tasker.image is the image every role runs.
*/}}
{{- define "tasker.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "tasker.imageTag" .) }}
{{- end }}

{{/*
tasker.workerImage is the image of WorkerPools that name none.
*/}}
{{- define "tasker.workerImage" -}}
{{- default (include "tasker.image" .) .Values.manager.workerImage }}
{{- end }}

{{/*
Service account names: the given name, or a generated one when the chart
creates the account.
*/}}
{{- define "tasker.managerServiceAccountName" -}}
{{- if .Values.manager.serviceAccount.create }}
{{- default (printf "%s-manager" (include "tasker.fullname" .)) .Values.manager.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.manager.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tasker.orchestratorServiceAccountName" -}}
{{- if .Values.orchestrator.serviceAccount.create }}
{{- default (printf "%s-orchestrator" (include "tasker.fullname" .)) .Values.orchestrator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.orchestrator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
tasker.apiTokenSecretName is the Secret that holds the API's bearer token:
orchestrator.apiToken.existingSecret, or the one the chart creates.
*/}}
{{- define "tasker.apiTokenSecretName" -}}
{{- default (printf "%s-api-token" (include "tasker.fullname" .)) .Values.orchestrator.apiToken.existingSecret }}
{{- end }}

{{/*
tasker.apiTokenSecretKey is the key of that Secret that holds the token.
*/}}
{{- define "tasker.apiTokenSecretKey" -}}
{{- if .Values.orchestrator.apiToken.existingSecret }}
{{- .Values.orchestrator.apiToken.existingSecretKey }}
{{- else }}
{{- "token" }}
{{- end }}
{{- end }}

{{/*
tasker.databaseEnv is the TASKER_DATABASE_URL variable, read from the
database Secret.
*/}}
{{- define "tasker.databaseEnv" -}}
- name: TASKER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.secretName }}
      key: {{ .Values.database.secretKey }}
{{- end }}

{{/*
tasker.logArgs are the logging flags of every long-running role.
*/}}
{{- define "tasker.logArgs" -}}
- --log-level={{ .Values.logging.level }}
- --log-format={{ .Values.logging.format }}
{{- end }}

{{/*
tasker.podScheduling renders the scheduling fields of a component's pods;
call it with the component's values.
*/}}
{{- define "tasker.podScheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}
