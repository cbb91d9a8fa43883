{{/* Object names: see fullnameOverride in values.yaml. */}}
{{- define "workspace-controller.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "workspace-controller" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-workspace-controller" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels of every object, and the pods' selector: the same single label as deploy/. */}}
{{- define "workspace-controller.labels" -}}
app.kubernetes.io/name: workspace-controller
{{- end -}}

{{/*
One document of a file under files/, as YAML: (list $ "files/<name>.yaml" "<kind>"). Those files are
links into deploy/, so what is not parameterised (RBAC rules, alert rules) has one copy only.
*/}}
{{- define "workspace-controller.document" -}}
{{- $root := index . 0 -}}
{{- $file := index . 1 -}}
{{- $kind := index . 2 -}}
{{- $found := dict -}}
{{- range regexSplit "(?m)^---[ \t]*$" ($root.Files.Get $file) -1 -}}
{{- $doc := fromYaml . -}}
{{- if eq (get $doc "kind") $kind -}}
{{- $found = $doc -}}
{{- end -}}
{{- end -}}
{{- if not $found -}}
{{- fail (printf "no %s in %s" $kind $file) -}}
{{- end -}}
{{- toYaml $found -}}
{{- end -}}
