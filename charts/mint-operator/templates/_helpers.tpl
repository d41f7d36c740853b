{{- define "mint-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mint-operator.fullname" -}}
{{- if contains (include "mint-operator.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "mint-operator.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mint-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mint-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mint-operator.labels" -}}
{{ include "mint-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mint
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "mint-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mint-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator's rules on namespaced resources: bound cluster-wide or per watched namespace. */}}
{{- define "mint-operator.namespacedRules" -}}
- apiGroups: [mint.dev]
  resources: [minttenants, mintlimits]
  verbs: [get, list, watch, patch, update]
- apiGroups: [mint.dev]
  resources: [minttenants/status, mintlimits/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [configmaps, services, serviceaccounts]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies, ingresses]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [kafka.strimzi.io]
  resources: [kafkatopics, kafkas, kafkanodepools]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [postgresql.cnpg.io]
  resources: [clusters, databases]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end -}}


{{/* Secrets: bound where the operator serves tenants, never cluster-wide unless asked. */}}
{{- define "mint-operator.secretRules" -}}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, update, delete]
{{- end -}}

{{/* "1" when the operator may watch Secrets wherever it watches tenants. */}}
{{- define "mint-operator.secretsEverywhere" -}}
{{- if or .Values.watchNamespaces .Values.clusterWideSecrets -}}1{{- else -}}0{{- end -}}
{{- end -}}

{{/* Namespaces whose Secrets the operator manages (RoleBindings). */}}
{{- define "mint-operator.secretNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- join "," .Values.watchNamespaces -}}
{{- else if not .Values.clusterWideSecrets -}}
{{- join "," .Values.secretNamespaces -}}
{{- end -}}
{{- end -}}
