{{/*
Text shown after install and upgrade (NOTES.txt). A named template so that
tests can render it with `helm template`, which skips NOTES.txt.
*/}}
{{- define "lk-jwt-service.notes" -}}
{{- $plan := include "lk-jwt-service.plan" . | fromJson -}}
{{- $fullname := include "lk-jwt-service.fullname" . -}}
lk-jwt-service (MatrixRTC Authorization Service) {{ .Chart.AppVersion }} is deployed as {{ $fullname }}.

SFU:                   {{ .Values.livekit.url }}
Full-access servers:   {{ join ", " $plan.homeservers }}
Delayed-leave jobs:    {{ if $plan.redis }}Redis{{ else }}in memory (lost on restart; one replica only){{ end }}
{{- if eq (include "lk-jwt-service.multiReplica" .) "true" }}
Replicas:              {{ if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}-{{ .Values.autoscaling.maxReplicas }} (autoscaled){{ else }}{{ .Values.replicaCount }}{{ end }}, jobs shared through Redis
{{- end }}

{{- if .Values.ingress.enabled }}
{{- $scheme := ternary "https" "http" (gt (len .Values.ingress.tls) 0) }}
{{- $first := first .Values.ingress.hosts }}
{{- $path := (first $first.paths).path | trimSuffix "/" }}

Public URL: {{ $scheme }}://{{ $first.host }}{{ $path }}

Advertise it to clients in https://<your server name>/.well-known/matrix/client
(served with Access-Control-Allow-Origin: *):

  "org.matrix.msc4143.rtc_foci": [
    {"type": "livekit", "livekit_service_url": "{{ $scheme }}://{{ $first.host }}{{ $path }}"}
  ]
{{- else }}

No Ingress is enabled. To try the service from your machine:

  kubectl --namespace {{ .Release.Namespace }} port-forward svc/{{ $fullname }} 8080:{{ .Values.service.port }}
  curl -i http://127.0.0.1:8080/healthz
{{- end }}

Point the SFU's webhook at http://{{ $fullname }}.{{ .Release.Namespace }}.svc:{{ .Values.service.port }}/sfu_webhook
Check the release with: helm test {{ .Release.Name }} --namespace {{ .Release.Namespace }}
{{- if .Values.insecureSkipVerifyTLS }}

WARNING: insecureSkipVerifyTLS is on: certificates of homeservers are NOT checked.
Never use this in production.
{{- end }}
{{- if .Values.existingSecret }}

Note: pods do not restart by themselves when the Secret {{ .Values.existingSecret }} changes;
run `kubectl rollout restart deployment/{{ $fullname }}` (or set podAnnotations).
{{- end }}

{{- end }}
