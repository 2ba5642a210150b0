{{/*
Names and labels.
*/}}
{{- define "lk-jwt-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lk-jwt-service.fullname" -}}
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

{{- define "lk-jwt-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lk-jwt-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lk-jwt-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "lk-jwt-service.labels" -}}
helm.sh/chart: {{ include "lk-jwt-service.chart" . }}
{{ include "lk-jwt-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: matrixrtc-authorization
{{- end }}

{{- define "lk-jwt-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lk-jwt-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "lk-jwt-service.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
Label that lets the `helm test` pod through a NetworkPolicy that restricts
the sources allowed to reach the service.
*/}}
{{- define "lk-jwt-service.clientLabel" -}}
lk-jwt-service/client: {{ .Release.Name | quote }}
{{- end }}

{{/*
True ("true") when more than one pod may run at once, so delayed-leave jobs
must be owned through Redis.
*/}}
{{- define "lk-jwt-service.multiReplica" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{- end }}
{{- end }}

{{/*
True ("true") when the chart renders its own Secret.
*/}}
{{- define "lk-jwt-service.managedSecret" -}}
{{- if and (not .Values.existingSecret) .Values.secrets.create }}true{{- end }}
{{- end }}

{{/*
Name of the Secret holding the credentials: the existing one, or the one the
chart renders. Empty when secrets.create is false and no name is given.
*/}}
{{- define "lk-jwt-service.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else if .Values.secrets.create }}
{{- default (include "lk-jwt-service.fullname" .) .Values.secrets.name }}
{{- else }}
{{- .Values.secrets.name }}
{{- end }}
{{- end }}

{{/*
Entries of the Secret the chart renders: secrets.data, then livekit.key,
livekit.secret and redis.url on top. JSON object of strings.
*/}}
{{- define "lk-jwt-service.secretEntries" -}}
{{- $entries := dict }}
{{- range $k, $v := (.Values.secrets.data | default dict) }}
{{- $_ := set $entries $k (toString $v) }}
{{- end }}
{{- with .Values.livekit.key }}{{ $_ := set $entries "key" (toString .) }}{{ end }}
{{- with .Values.livekit.secret }}{{ $_ := set $entries "secret" (toString .) }}{{ end }}
{{- with .Values.redis.url }}{{ $_ := set $entries "redisUrl" (toString .) }}{{ end }}
{{- toJson $entries }}
{{- end }}

{{/*
Directory where the secret files are mounted in the container.
*/}}
{{- define "lk-jwt-service.secretDir" -}}
/etc/lk-jwt-service/secrets
{{- end }}

{{/*
Works out where every credential comes from, and refuses to render (fail)
when the configuration cannot work. Returns a JSON object:
  env:     name -> value of the *_FROM_FILE / *_FILE variables
  sources: projected volume sources (Secret / ConfigMap items)
Every check lives here so that each refusal has one clear message.
*/}}
{{- define "lk-jwt-service.plan" -}}
{{- $v := .Values }}
{{- $dir := include "lk-jwt-service.secretDir" . }}
{{- $managed := eq (include "lk-jwt-service.managedSecret" .) "true" }}
{{- $secretName := include "lk-jwt-service.secretName" . }}
{{- $env := dict }}
{{- $items := list }}
{{- $sources := list }}

{{- if not $v.livekit.url }}
{{- fail "lk-jwt-service: livekit.url is required: the SFU's WebSocket URL returned to clients, e.g. wss://livekit.example.com" }}
{{- end }}
{{- if not (regexMatch "^(wss?|https?)://[^/\\s]+" (toString $v.livekit.url)) }}
{{- fail (printf "lk-jwt-service: livekit.url must be a ws://, wss://, http:// or https:// URL, got %q" (toString $v.livekit.url)) }}
{{- end }}

{{- if and $v.existingSecret (or $v.livekit.key $v.livekit.secret) }}
{{- fail "lk-jwt-service: livekit.key and livekit.secret cannot be combined with existingSecret: put them in the existing Secret (entries named by existingSecretKeys)" }}
{{- end }}

{{- /* Entries known to be in the Secret, mapped to their entry names. */}}
{{- $known := dict }}
{{- $inline := dict }}
{{- if $managed }}
{{- $inline = include "lk-jwt-service.secretEntries" . | fromJson }}
{{- range $k := list "key" "secret" "keyFile" "redisUrl" }}
{{- if get $inline $k }}{{ $_ := set $known $k $k }}{{ end }}
{{- end }}
{{- else if $secretName }}
{{- $_ := set $known "key" $v.existingSecretKeys.key }}
{{- $_ := set $known "secret" $v.existingSecretKeys.secret }}
{{- with $v.existingSecretKeys.keyFile }}{{ $_ := set $known "keyFile" . }}{{ end }}
{{- with $v.existingSecretKeys.redisUrl }}{{ $_ := set $known "redisUrl" . }}{{ end }}
{{- end }}

{{- /* LiveKit credentials: a key file wins, then key + secret. */}}
{{- if $v.livekit.keyFile }}
{{- $_ := set $env "LIVEKIT_KEY_FILE" $v.livekit.keyFile }}
{{- else if get $known "keyFile" }}
{{- $_ := set $env "LIVEKIT_KEY_FILE" (printf "%s/key-file" $dir) }}
{{- $items = append $items (dict "key" (get $known "keyFile") "path" "key-file") }}
{{- if $managed }}
{{- $parts := splitList ":" (get $inline "keyFile") }}
{{- if or (ne (len $parts) 2) (not (trim (first $parts))) (not (trim (last $parts))) }}
{{- fail "lk-jwt-service: secrets.data.keyFile must be \"key:secret\" (exactly one colon, neither side empty)" }}
{{- end }}
{{- if lt (len (trim (last $parts))) 32 }}
{{- fail (printf "lk-jwt-service: the LiveKit secret in secrets.data.keyFile must be at least 32 characters, got %d" (len (trim (last $parts)))) }}
{{- end }}
{{- end }}
{{- else }}
{{- $hasKey := or $v.livekit.keyFromFile (get $known "key") }}
{{- $hasSecret := or $v.livekit.secretFromFile (get $known "secret") }}
{{- if and (not $hasKey) (not $hasSecret) }}
{{- fail "lk-jwt-service: no LiveKit credentials: set livekit.key and livekit.secret, or existingSecret, or livekit.keyFile, or livekit.keyFromFile and livekit.secretFromFile" }}
{{- end }}
{{- if not $hasKey }}
{{- fail "lk-jwt-service: the LiveKit API secret is set but the key is not: set livekit.key (or livekit.keyFromFile)" }}
{{- end }}
{{- if not $hasSecret }}
{{- fail "lk-jwt-service: the LiveKit API key is set but the secret is not: set livekit.secret (or livekit.secretFromFile)" }}
{{- end }}
{{- if $v.livekit.keyFromFile }}
{{- $_ := set $env "LIVEKIT_KEY_FROM_FILE" $v.livekit.keyFromFile }}
{{- else }}
{{- $_ := set $env "LIVEKIT_KEY_FROM_FILE" (printf "%s/key" $dir) }}
{{- $items = append $items (dict "key" (get $known "key") "path" "key") }}
{{- end }}
{{- if $v.livekit.secretFromFile }}
{{- $_ := set $env "LIVEKIT_SECRET_FROM_FILE" $v.livekit.secretFromFile }}
{{- else }}
{{- $_ := set $env "LIVEKIT_SECRET_FROM_FILE" (printf "%s/secret" $dir) }}
{{- $items = append $items (dict "key" (get $known "secret") "path" "secret") }}
{{- if $managed }}
{{- $secret := trim (get $inline "secret") }}
{{- if lt (len $secret) 32 }}
{{- fail (printf "lk-jwt-service: livekit.secret must be at least 32 characters, got %d: generate one with `openssl rand -base64 32`" (len $secret)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Redis. */}}
{{- $redis := false }}
{{- if $v.redis.urlFromFile }}
{{- $redis = true }}
{{- $_ := set $env "LIVEKIT_REDIS_URL_FROM_FILE" $v.redis.urlFromFile }}
{{- else if $v.redis.existingSecret.name }}
{{- $redis = true }}
{{- $_ := set $env "LIVEKIT_REDIS_URL_FROM_FILE" (printf "%s/redis-url" $dir) }}
{{- $sources = append $sources (dict "secret" (dict "name" $v.redis.existingSecret.name "items" (list (dict "key" $v.redis.existingSecret.key "path" "redis-url")))) }}
{{- else if get $known "redisUrl" }}
{{- $redis = true }}
{{- $_ := set $env "LIVEKIT_REDIS_URL_FROM_FILE" (printf "%s/redis-url" $dir) }}
{{- $items = append $items (dict "key" (get $known "redisUrl") "path" "redis-url") }}
{{- if and $managed (not (regexMatch "^rediss?://" (get $inline "redisUrl"))) }}
{{- fail "lk-jwt-service: redis.url must start with redis:// or rediss://" }}
{{- end }}
{{- end }}

{{- if and (eq (include "lk-jwt-service.multiReplica" .) "true") (not $redis) }}
{{- if $v.autoscaling.enabled }}
{{- fail "lk-jwt-service: autoscaling is enabled but no Redis is configured: delayed-leave jobs would be split across pods. Set redis.url (or redis.existingSecret), or disable autoscaling" }}
{{- else }}
{{- fail (printf "lk-jwt-service: replicaCount is %d but no Redis is configured: delayed-leave jobs would be split across pods. Set redis.url (or redis.existingSecret), or use replicaCount: 1" (int $v.replicaCount)) }}
{{- end }}
{{- end }}

{{- if $items }}
{{- $sources = prepend $sources (dict "secret" (dict "name" $secretName "items" $items)) }}
{{- end }}

{{- /* Extra CAs for outgoing TLS. */}}
{{- if and $v.trustedCA.configMap $v.trustedCA.secret }}
{{- fail "lk-jwt-service: set only one of trustedCA.configMap and trustedCA.secret" }}
{{- end }}
{{- if $v.trustedCA.configMap }}
{{- $_ := set $env "SSL_CERT_FILE" (printf "%s/ca.crt" $dir) }}
{{- $sources = append $sources (dict "configMap" (dict "name" $v.trustedCA.configMap "items" (list (dict "key" $v.trustedCA.key "path" "ca.crt")))) }}
{{- else if $v.trustedCA.secret }}
{{- $_ := set $env "SSL_CERT_FILE" (printf "%s/ca.crt" $dir) }}
{{- $sources = append $sources (dict "secret" (dict "name" $v.trustedCA.secret "items" (list (dict "key" $v.trustedCA.key "path" "ca.crt")))) }}
{{- end }}

{{- /* Homeservers with full access. */}}
{{- $hs := $v.fullAccessHomeservers }}
{{- if kindIs "string" $hs }}
{{- $hs = regexSplit "[,\\s]+" (trim $hs) -1 | compact }}
{{- end }}
{{- if not $hs }}
{{- fail "lk-jwt-service: fullAccessHomeservers is required: list the Matrix server names whose users may create rooms, e.g. [example.com] (or [\"*\"] for every server)" }}
{{- end }}

{{- if and (gt (int $v.metrics.port) 0) (eq (int $v.metrics.port) (int $v.containerPort)) }}
{{- fail (printf "lk-jwt-service: metrics.port (%d) must differ from containerPort, or be 0 to serve /metrics on the main port" (int $v.metrics.port)) }}
{{- end }}

{{- toJson (dict "env" $env "sources" $sources "homeservers" $hs "redis" $redis) }}
{{- end }}

{{/*
LIVEKIT_CS_API_URL_OVERRIDES from a map (sorted, so renders are stable) or a
string given as is.
*/}}
{{- define "lk-jwt-service.csApiUrlOverrides" -}}
{{- $o := .Values.csApiUrlOverrides }}
{{- if kindIs "string" $o }}
{{- $o }}
{{- else if $o }}
{{- $pairs := list }}
{{- range $server := keys $o | sortAlpha }}
{{- $url := get $o $server | toString | trim }}
{{- if not $url }}
{{- fail (printf "lk-jwt-service: csApiUrlOverrides.%s is empty: give the homeserver's Client-Server API base URL" $server) }}
{{- end }}
{{- $pairs = append $pairs (printf "%s=%s" $server $url) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}
{{- end }}
