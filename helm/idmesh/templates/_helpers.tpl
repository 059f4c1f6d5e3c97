{{/*
Shared helpers. Each component's template file (gateway.yaml,
directories.yaml, …) states what is particular to it (its targets, ports,
peers, dependencies) and renders its objects with "idmesh.component".
*/}}

{{- define "idmesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Leaves room for the longest "-<component>" suffix (-directories). */}}
{{- define "idmesh.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of a component's objects. dict: root, component. */}}
{{- define "idmesh.componentName" -}}
{{- printf "%s-%s" (include "idmesh.fullname" .root) .component }}
{{- end }}

{{- define "idmesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "idmesh.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of every object. dict: root, component. */}}
{{- define "idmesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "idmesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: idmesh
{{- end }}

{{- define "idmesh.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "idmesh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "idmesh.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* ip:port for a listen address; IPv6 in brackets. dict: root, port. */}}
{{- define "idmesh.listenAddr" -}}
{{- $host := .root.Values.listenAddress }}
{{- if contains ":" $host }}
{{- printf "[%s]:%d" $host (int .port) }}
{{- else }}
{{- printf "%s:%d" $host (int .port) }}
{{- end }}
{{- end }}

{{/*
Where the other components reach a gRPC component: its addressOverride, or
this release's Service when it is enabled here. A peer that is neither is an
error, not a Service name that resolves to nothing. dict: root, component.
*/}}
{{- define "idmesh.peerAddress" -}}
{{- $values := index .root.Values .component }}
{{- if $values.addressOverride }}
{{- $values.addressOverride }}
{{- else if $values.enabled }}
{{- printf "%s:%d" (include "idmesh.componentName" .) (int (index .root.Values.ports .component)) }}
{{- else }}
{{- fail (printf "%s.enabled is false: set %s.addressOverride to where it runs, since other components call it" .component .component) }}
{{- end }}
{{- end }}

{{/*
Where the database URL comes from, in this order: "secretUrl"
(existingSecret + existingSecretUrlKey), "url", "secretPassword" (host, with
existingSecret + existingSecretPasswordKey), "password" (host, with
password), "host" (no password), or "" (none: SQLite in the data dir).
*/}}
{{- define "idmesh.databaseSource" -}}
{{- $db := .Values.externalDatabase }}
{{- if and $db.existingSecret $db.existingSecretUrlKey }}secretUrl
{{- else if $db.url }}url
{{- else if and $db.host $db.existingSecret $db.existingSecretPasswordKey }}secretPassword
{{- else if and $db.host $db.password }}password
{{- else if $db.host }}host
{{- end }}
{{- end }}

{{/* Whether Redis is configured ("true" or ""). */}}
{{- define "idmesh.hasRedis" -}}
{{- $redis := .Values.externalRedis }}
{{- if or $redis.url (and $redis.existingSecret $redis.existingSecretUrlKey) }}true{{ end }}
{{- end }}

{{/*
IDMESH_DATABASE_URL, from a Secret or composed by Kubernetes from a Secret's
password ($(DATABASE_PASSWORD) expansion), so that no secret is ever in the
pod spec or in arguments.
*/}}
{{- define "idmesh.databaseEnv" -}}
{{- $db := .Values.externalDatabase }}
{{- $source := include "idmesh.databaseSource" . }}
{{- if eq $source "secretUrl" "url" }}
- name: IDMESH_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ ternary $db.existingSecret (printf "%s-database" (include "idmesh.fullname" .)) (eq $source "secretUrl") }}
      key: {{ ternary $db.existingSecretUrlKey "url" (eq $source "secretUrl") }}
{{- else if $source }}
{{- $auth := "" }}
{{- if eq $source "secretPassword" "password" }}
{{- $auth = ":$(DATABASE_PASSWORD)" }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ ternary $db.existingSecret (printf "%s-database" (include "idmesh.fullname" .)) (eq $source "secretPassword") }}
      key: {{ ternary $db.existingSecretPasswordKey "password" (eq $source "secretPassword") }}
{{- end }}
- name: IDMESH_DATABASE_URL
  value: {{ printf "postgres://%s%s@%s:%d/%s?sslmode=%s" $db.user $auth $db.host (int $db.port) $db.database $db.sslMode | quote }}
{{- end }}
{{- end }}

{{/* IDMESH_REDIS_URL, the same way as the database's. */}}
{{- define "idmesh.redisEnv" -}}
{{- $redis := .Values.externalRedis }}
{{- if and $redis.existingSecret $redis.existingSecretUrlKey }}
- name: IDMESH_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $redis.existingSecret }}
      key: {{ $redis.existingSecretUrlKey }}
{{- else if and $redis.url $redis.existingSecret $redis.existingSecretPasswordKey }}
{{- $parts := splitn "://" 2 $redis.url }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $redis.existingSecret }}
      key: {{ $redis.existingSecretPasswordKey }}
- name: IDMESH_REDIS_URL
  value: {{ printf "%s://:$(REDIS_PASSWORD)@%s" $parts._0 $parts._1 | quote }}
{{- else if $redis.url }}
- name: IDMESH_REDIS_URL
  value: {{ $redis.url | quote }}
{{- end }}
{{- end }}

{{/* The environment every container has. */}}
{{- define "idmesh.commonEnv" -}}
- name: IDMESH_DATA_DIR
  value: {{ .Values.dataDir | quote }}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
- name: IDMESH_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- with .Values.tracing.otlpEndpoint }}
- name: IDMESH_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if .Values.metrics.enabled }}
- name: IDMESH_METRICS_ADDR
  value: {{ include "idmesh.listenAddr" (dict "root" . "port" .Values.ports.metrics) | quote }}
{{- end }}
{{- end }}

{{/*
The probes of a component. dict: root, kind ("http" for the gateway, "grpc"
for the services), port, probes (the component's probes values).
The gateway's /healthz is its liveness and startup, /readyz its readiness;
a service's grpc.health.v1 (server "") is all three, with the lenient
thresholds of values.yaml for liveness.
*/}}
{{- define "idmesh.probes" -}}
{{- $kind := .kind }}
{{- $port := int .port }}
{{- range $probe := list "startup" "liveness" "readiness" }}
{{- $settings := index $.probes $probe }}
{{ $probe }}Probe:
  {{- if eq $kind "http" }}
  httpGet:
    path: {{ ternary "/readyz" "/healthz" (eq $probe "readiness") }}
    port: {{ $port }}
  {{- else }}
  grpc:
    port: {{ $port }}
    service: ""
  {{- end }}
  periodSeconds: {{ $settings.periodSeconds }}
  timeoutSeconds: {{ $settings.timeoutSeconds }}
  failureThreshold: {{ $settings.failureThreshold }}
{{- end }}
{{- end }}

{{/*
The Secret holding the API keys: the user's, or the chart's own.
*/}}
{{- define "idmesh.apiKeysSecret" -}}
{{- default (printf "%s-api-keys" (include "idmesh.fullname" .)) .Values.apiKeys.existingSecret }}
{{- end }}

{{/*
The components that call with a key of their own, and whose keys
directory-service installs: every one but directories.
*/}}
{{- define "idmesh.keyedComponents" -}}
gateway users groups sessions roles events
{{- end }}

{{/*
How a component gets its API keys, as {env, mounts, volumes} of YAML
text. directories: the bootstrap admin key (also the key `kubectl exec …
idmesh` admin commands call with) and every other component's key, which
it installs with that component's scopes (IDMESH_SERVICE_KEYS_DIR). All in
one: the bootstrap admin key; its services get fresh keys in-process. Any
other component: its own key as IDMESH_API_KEY_FILE. dict: root, component.
*/}}
{{- define "idmesh.apiKeyFiles" -}}
{{- $secret := include "idmesh.apiKeysSecret" .root }}
{{- $admin := dict "name" "admin-key" "mountPath" "/etc/idmesh/admin" "items" (list (dict "key" "bootstrap-admin" "path" "bootstrap-admin")) }}
{{- $mounts := list }}
{{- $env := list }}
{{- if has .component (list "directories" "allInOne") }}
{{- $mounts = append $mounts $admin }}
{{- $env = append $env (dict "name" "IDMESH_BOOTSTRAP_ADMIN_KEY_FILE" "value" "/etc/idmesh/admin/bootstrap-admin") }}
{{- $env = append $env (dict "name" "IDMESH_API_KEY_FILE" "value" "/etc/idmesh/admin/bootstrap-admin") }}
{{- end }}
{{- if eq .component "directories" }}
{{- $items := list }}
{{- range (include "idmesh.keyedComponents" . | splitList " ") }}
{{- $items = append $items (dict "key" . "path" .) }}
{{- end }}
{{- $mounts = append $mounts (dict "name" "service-keys" "mountPath" "/etc/idmesh/service-keys" "items" $items) }}
{{- $env = append $env (dict "name" "IDMESH_SERVICE_KEYS_DIR" "value" "/etc/idmesh/service-keys") }}
{{- else if not (eq .component "allInOne") }}
{{- $mounts = append $mounts (dict "name" "api-key" "mountPath" "/etc/idmesh/api-key" "items" (list (dict "key" .component "path" "key"))) }}
{{- $env = append $env (dict "name" "IDMESH_API_KEY_FILE" "value" "/etc/idmesh/api-key/key") }}
{{- end }}
env:
{{- toYaml $env | nindent 2 }}
mounts:
{{- range $mounts }}
  - name: {{ .name }}
    mountPath: {{ .mountPath }}
    readOnly: true
{{- end }}
volumes:
{{- range $mounts }}
  - name: {{ .name }}
    secret:
      secretName: {{ $secret }}
      defaultMode: 0440
      items:
        {{- toYaml .items | nindent 8 }}
{{- end }}
{{- end }}

{{/*
A component's Deployment, Service, PodDisruptionBudget and
HorizontalPodAutoscaler. dict:
  root       the chart's context
  component  its key in values
  name       its name in object names and labels; component if empty
  targets    the targets the process runs
  ports      [{name, port}] it listens on (the metrics port is added)
  probe      {kind: http|grpc, port}
  env        extra environment (a YAML list, as text)
  volume     the data volume's source (a YAML map, as text); emptyDir if empty
  strategy   the Deployment strategy type; RollingUpdate if empty
*/}}
{{- define "idmesh.component" -}}
{{- $root := .root }}
{{- $values := index $root.Values .component }}
{{- $ctx := dict "root" $root "component" (default .component .name) }}
{{- $name := include "idmesh.componentName" $ctx }}
{{- $ports := .ports }}
{{- if $root.Values.metrics.enabled }}
{{- $ports = append $ports (dict "name" "metrics" "port" $root.Values.ports.metrics) }}
{{- end }}
{{- $autoscaling := dig "autoscaling" "enabled" false $values }}
{{- $keys := include "idmesh.apiKeyFiles" (dict "root" $root "component" .component) | fromYaml }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "idmesh.labels" $ctx | nindent 4 }}
spec:
  {{- if not $autoscaling }}
  replicas: {{ $values.replicas }}
  {{- end }}
  {{- with .strategy }}
  strategy:
    type: {{ . }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "idmesh.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "idmesh.selectorLabels" $ctx | nindent 8 }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with merge (deepCopy $values.podAnnotations) $root.Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "idmesh.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.automountServiceAccountToken }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        runAsUser: {{ $root.Values.securityContext.runAsUser }}
        runAsGroup: {{ $root.Values.securityContext.runAsGroup }}
        fsGroup: {{ $root.Values.securityContext.fsGroup }}
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: idmesh
          image: {{ include "idmesh.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: ["serve", "--targets", {{ join "," .targets | quote }}]
          env:
            {{- include "idmesh.commonEnv" $root | nindent 12 }}
            - name: OTEL_SERVICE_NAME
              value: {{ $name | quote }}
            {{- toYaml $keys.env | nindent 12 }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            {{- range $ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
          {{- include "idmesh.probes" (dict "root" $root "kind" .probe.kind "port" .probe.port "probes" $values.probes) | trim | nindent 10 }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            runAsNonRoot: true
            runAsUser: {{ $root.Values.securityContext.runAsUser }}
            runAsGroup: {{ $root.Values.securityContext.runAsGroup }}
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            privileged: false
            capabilities:
              drop: ["ALL"]
            seccompProfile:
              type: RuntimeDefault
          volumeMounts:
            - name: data
              mountPath: {{ $root.Values.dataDir }}
            - name: tmp
              mountPath: /tmp
            {{- with $keys.mounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: data
          {{- if .volume }}
          {{- .volume | nindent 10 }}
          {{- else }}
          emptyDir:
            sizeLimit: {{ $root.Values.dataVolume.sizeLimit }}
          {{- end }}
        - name: tmp
          emptyDir:
            sizeLimit: {{ $root.Values.tmpVolume.sizeLimit }}
        {{- with $keys.volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $values.affinity }}
      affinity:
        {{- toYaml $values.affinity | nindent 8 }}
      {{- else if $root.Values.podAntiAffinity }}
      affinity:
        podAntiAffinity:
          {{- if eq $root.Values.podAntiAffinity "hard" }}
          requiredDuringSchedulingIgnoredDuringExecution:
            - topologyKey: kubernetes.io/hostname
              labelSelector:
                matchLabels:
                  {{- include "idmesh.selectorLabels" $ctx | nindent 18 }}
          {{- else }}
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "idmesh.selectorLabels" $ctx | nindent 20 }}
          {{- end }}
      {{- end }}
      {{- if $values.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml $values.topologySpreadConstraints | nindent 8 }}
      {{- else if $root.Values.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range $root.Values.topologySpread.topologyKeys }}
        - maxSkew: {{ $root.Values.topologySpread.maxSkew }}
          topologyKey: {{ . }}
          whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "idmesh.selectorLabels" $ctx | nindent 14 }}
        {{- end }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "idmesh.labels" $ctx | nindent 4 }}
  {{- with $values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $values.service.type }}
  selector:
    {{- include "idmesh.selectorLabels" $ctx | nindent 4 }}
  ports:
    {{- range $ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
      {{- if ne .name "http" }}
      appProtocol: {{ ternary "http" "grpc" (eq .name "metrics") }}
      {{- end }}
    {{- end }}
{{- if $values.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "idmesh.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: {{ $values.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "idmesh.selectorLabels" $ctx | nindent 6 }}
{{- end }}
{{- if $autoscaling }}
{{- if not (dig "requests" "cpu" "" $values.resources) }}
{{- fail (printf "%s.autoscaling needs %s.resources.requests.cpu: utilisation is a share of the request" .component .component) }}
{{- end }}
{{- if lt (int $values.autoscaling.maxReplicas) (int $values.autoscaling.minReplicas) }}
{{- fail (printf "%s.autoscaling.maxReplicas is below minReplicas" .component) }}
{{- end }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels:
    {{- include "idmesh.labels" $ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $values.autoscaling.minReplicas }}
  maxReplicas: {{ $values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $values.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- end }}
