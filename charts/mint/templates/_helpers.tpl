{{- define "mint.tenantName" -}}
{{- default .Release.Name .Values.tenant.name | trunc 33 | trimSuffix "-" -}}
{{- end -}}

{{- define "mint.labels" -}}
app.kubernetes.io/name: mint
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
