{{/* The chart name, or nameOverride. */}}
{{- define "iam-tailor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The resource name prefix: fullnameOverride, else the release name, plus the chart name unless
the release name already contains it. At most 63 characters (a DNS label).
*/}}
{{- define "iam-tailor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "iam-tailor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "iam-tailor.labels" -}}
helm.sh/chart: {{ include "iam-tailor.chart" . }}
{{ include "iam-tailor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator pods. */}}
{{- define "iam-tailor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iam-tailor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "iam-tailor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "iam-tailor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: asked for, or needed by more than one replica. */}}
{{- define "iam-tailor.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "iam-tailor.leaseName" -}}
{{- default (include "iam-tailor.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* host:port for --metrics-addr; an IPv6 host goes in brackets. */}}
{{- define "iam-tailor.metricsAddr" -}}
{{- $host := toString .Values.metrics.bindAddress }}
{{- if contains ":" $host }}
{{- printf "[%s]:%d" $host (int .Values.metrics.port) }}
{{- else }}
{{- printf "%s:%d" $host (int .Values.metrics.port) }}
{{- end }}
{{- end }}

{{/*
The rules the operator needs where it watches LeastPrivilegeRoles (derived from the code; the
RBAC end-to-end test, tests/chart_rbac.rs, runs the operator with exactly these):
- the resources: list and watch (the controller's reflector and the startup check), patch (the
  finalizer, by JSON patch); their status: patch (server-side apply);
- ConfigMaps: get, create and delete of the backups (never list, watch or update);
- events.k8s.io Events: create, and patch to count repeats.
*/}}
{{- define "iam-tailor.watchRules" -}}
- apiGroups: [iamtailor.dev]
  resources: [leastprivilegeroles]
  verbs: [list, watch, patch]
- apiGroups: [iamtailor.dev]
  resources: [leastprivilegeroles/status]
  verbs: [patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
