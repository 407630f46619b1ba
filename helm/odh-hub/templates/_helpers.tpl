{{/* Names: every object name comes from these helpers. */}}
{{- define "odh-hub.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "odh-hub.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains (include "odh-hub.name" .) .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "odh-hub.name" .) | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "odh-hub.hub" -}}{{ include "odh-hub.fullname" . }}-hub{{- end -}}
{{- define "odh-hub.proxy" -}}{{ include "odh-hub.fullname" . }}-proxy{{- end -}}
{{- define "odh-hub.proxyPublic" -}}{{ include "odh-hub.fullname" . }}-proxy-public{{- end -}}
{{- define "odh-hub.proxyApi" -}}{{ include "odh-hub.fullname" . }}-proxy-api{{- end -}}
{{- define "odh-hub.platform" -}}{{ include "odh-hub.fullname" . }}-platform{{- end -}}
{{- define "odh-hub.profiles" -}}{{ include "odh-hub.fullname" . }}-profiles{{- end -}}
{{- define "odh-hub.secret" -}}{{ include "odh-hub.fullname" . }}-secrets{{- end -}}
{{- define "odh-hub.ingestNamespace" -}}
{{- if eq .Values.kafka.ingest.backend "strimzi" -}}
{{- $ns := required "kafka.ingest.connectNamespace is required with kafka.ingest.backend=strimzi" .Values.kafka.ingest.connectNamespace -}}
{{- if eq $ns .Release.Namespace -}}{{ fail "kafka.ingest.connectNamespace must not be the release namespace (the Connect pods may read Secrets there)" }}{{- end -}}
{{ $ns }}
{{- else -}}
{{ .Release.Namespace }}
{{- end -}}
{{- end -}}
{{- define "odh-hub.servingNamespace" -}}{{ .Values.serving.namespace | default .Release.Namespace }}{{- end -}}
{{- /* the namespaces users' pods run in (space-separated, may repeat): servers and Spark, serving, ingestion */}}
{{- define "odh-hub.usageNamespaces" -}}
{{ .Release.Namespace }} {{ include "odh-hub.servingNamespace" . }}{{ if .Values.kafka.bootstrap }} {{ include "odh-hub.ingestNamespace" . }}{{ end }}
{{- end -}}

{{/* Labels */}}
{{- define "odh-hub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "odh-hub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "odh-hub.labels" -}}
{{ include "odh-hub.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* component labels: include "odh-hub.componentLabels" (list . "hub") */}}
{{- define "odh-hub.componentLabels" -}}
{{ include "odh-hub.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}
{{- define "odh-hub.componentSelector" -}}
{{ include "odh-hub.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The labels OdhKubeSpawner puts on users' pods (besides KubeSpawner's own), selected by NetworkPolicies. */}}
{{- define "odh-hub.userPodLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
odh-hub/role: user-server
{{- end -}}

{{- define "odh-hub.image" -}}
{{- if .digest -}}{{ .repository }}@{{ .digest }}{{- else -}}{{ .repository }}:{{ .tag }}{{- end -}}
{{- end -}}

{{- define "odh-hub.pullSecrets" -}}
{{- with .Values.images.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Secure defaults of every platform container (as zero-to-jupyterhub-k8s has them). */}}
{{- define "odh-hub.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "odh-hub.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
A generated secret value: the one already stored in the release's Secret (kept on upgrade: `lookup`), else a new
random one (64 hex characters). Call: include "odh-hub.secretValue" (list . "key")
*/}}
{{- define "odh-hub.secretValue" -}}
{{- $root := index . 0 -}}
{{- $key := index . 1 -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (include "odh-hub.secret" $root) -}}
{{- if and $existing $existing.data (hasKey $existing.data $key) -}}
{{- index $existing.data $key | b64dec -}}
{{- else -}}
{{- randAlphaNum 64 | sha256sum -}}
{{- end -}}
{{- end -}}

{{/*
Where each generated secret comes from: the admin's existing Secret (GitOps: `helm template` cannot `lookup`, so
generating would rotate it on every sync) or the chart's own Secret. A JSON object: chart key -> {name, key,
generated}. The values: hub.cookieSecret, proxy.authToken, platform.apiToken,
authenticator.file.initialAdmin.password (each `existingSecret` and `key`).
*/}}
{{- define "odh-hub.secretSources" -}}
{{- $v := .Values -}}
{{- $sources := dict
  "cookie-secret" $v.hub.cookieSecret
  "proxy-token" $v.proxy.authToken
  "platform-api-token" $v.platform.apiToken
  "initial-admin-password" $v.authenticator.file.initialAdmin.password -}}
{{- $out := dict -}}
{{- range $id, $src := $sources -}}
{{- if $src.existingSecret -}}
{{- $_ := set $out $id (dict "name" $src.existingSecret "key" ($src.key | default $id) "generated" false) -}}
{{- else -}}
{{- $_ := set $out $id (dict "name" (include "odh-hub.secret" $) "key" $id "generated" true) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* A secretKeyRef (flow mapping) for one generated secret. Call: include "odh-hub.secretKeyRef" (list . "proxy-token") */}}
{{- define "odh-hub.secretKeyRef" -}}
{{- $ref := get (include "odh-hub.secretSources" (index . 0) | fromJson) (index . 1) -}}
{name: {{ $ref.name | quote }}, key: {{ $ref.key | quote }}}
{{- end -}}

{{/* The keys the chart's own Secret must generate (those with no existingSecret), as a JSON list. */}}
{{- define "odh-hub.generatedKeys" -}}
{{- $sources := include "odh-hub.secretSources" . | fromJson -}}
{{- $wanted := list "cookie-secret" "proxy-token" "platform-api-token" -}}
{{- if and (eq .Values.authenticator.type "file") (not .Values.authenticator.file.usersSecret) -}}
{{- $wanted = append $wanted "initial-admin-password" -}}
{{- end -}}
{{- $out := list -}}
{{- range $wanted -}}
{{- if (get $sources .).generated -}}{{- $out = append $out . -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{- define "odh-hub.platformUrl" -}}
http://{{ include "odh-hub.platform" . }}.{{ .Release.Namespace }}.svc:10101
{{- end -}}

{{/* The hub's settings document (data, read by odh_spawner.kubeplatform.hubconfig). */}}
{{- define "odh-hub.hubSettings" -}}
{{- $v := .Values -}}
{{- $auth := dict "type" $v.authenticator.type "admins" $v.authenticator.admins -}}
{{- if eq $v.authenticator.type "file" -}}
{{- if $v.authenticator.file.usersSecret -}}
{{- $_ := set $auth "usersFile" "/etc/odh-hub/users/users.yaml" -}}
{{- else -}}
{{- $_ := set $auth "usersFile" "/run/odh-hub/users/users.yaml" -}}
{{- $_ := set $auth "initialAdmin" $v.authenticator.file.initialAdmin -}}
{{- end -}}
{{- else -}}
{{- $_ := set $auth "className" $v.authenticator.custom.className -}}
{{- $_ := set $auth "manageGroups" $v.authenticator.custom.manageGroups -}}
{{- $_ := set $auth "config" $v.authenticator.custom.config -}}
{{- end -}}
{{- $pullSecrets := $v.images.pullSecrets -}}
{{- $s := dict
  "namespace" .Release.Namespace
  "release" .Release.Name
  "hub" (dict
    "baseUrl" $v.hub.baseUrl
    "port" 8081
    "connectUrl" (printf "http://%s.%s.svc:8081" (include "odh-hub.hub" .) .Release.Namespace)
    "dbUrl" "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
    "logLevel" $v.hub.logLevel
    "allowNamedServers" $v.hub.allowNamedServers)
  "proxy" (dict "apiUrl" (printf "http://%s.%s.svc:8001" (include "odh-hub.proxyApi" .) .Release.Namespace))
  "authenticator" $auth
  "profilesPath" "/etc/odh-hub/profiles/profiles.yaml"
  "storage" (dict
    "enabled" $v.storage.enabled
    "adminEndpoint" $v.storage.adminEndpoint
    "s3Endpoint" $v.storage.s3Endpoint
    "adminKeysFile" "/etc/odh-hub/rgw-admin"
    "quota" $v.storage.quota)
  "kafka" (dict "bootstrap" $v.kafka.bootstrap)
  "quotas" $v.quotas
  "platform" (dict "enabled" $v.platform.enabled "url" (include "odh-hub.platformUrl" .))
  "spark" $v.spark
  "networkPolicy" (dict "enabled" $v.networkPolicy.enabled)
  "culler" $v.culler
  "singleuser" (dict
    "uid" $v.singleuser.uid
    "gid" $v.singleuser.gid
    "fsGid" $v.singleuser.fsGid
    "startTimeout" $v.singleuser.startTimeout
    "defaultUrl" $v.singleuser.defaultUrl
    "nodeSelector" $v.singleuser.nodeSelector
    "tolerations" $v.singleuser.tolerations
    "storage" $v.singleuser.storage
    "imagePullPolicy" $v.images.pullPolicy
    "imagePullSecrets" $pullSecrets
    "podLabels" (include "odh-hub.userPodLabels" . | fromYaml))
-}}
{{- toPrettyJson $s -}}
{{- end -}}

{{/* The platform service's command-line settings (no secrets: those come from the environment). */}}
{{- define "odh-hub.platformArgs" -}}
{{- /* a directory of its own on the volume: the service sets its mode, which it cannot on the volume's root */ -}}
- --PlatformService.state_dir=/srv/platform/state
- --PlatformService.public_url={{ .Values.hub.publicUrl }}
- --PlatformService.proxy_api_url=http://{{ include "odh-hub.proxyApi" . }}.{{ .Release.Namespace }}.svc:8001
- --PlatformService.gateway_url={{ include "odh-hub.platformUrl" . }}
- --PlatformService.max_model_size={{ .Values.platform.maxModelSize }}
- --PlatformService.max_deployments_per_user={{ .Values.platform.maxDeploymentsPerUser }}
- --PlatformService.serving_backend_class=odh_spawner.deploy.kube.KubeServingBackend
- --KubeServingBackend.serving_resource={{ .Values.serving.backend | replace "seldon-v1" "seldon" }}
- --KubeServingBackend.namespace={{ include "odh-hub.servingNamespace" . }}
{{- if ne (include "odh-hub.servingNamespace" .) .Release.Namespace }}
- --KubeServingBackend.platform_namespace={{ .Release.Namespace }}
{{- end }}
{{- with .Values.serving.meshUrl }}
- --KubeServingBackend.mesh_url={{ . }}
{{- end }}
{{- if eq .Values.serving.backend "mlserver" }}
- --KubeServingBackend.mlserver_image={{ .Values.serving.mlserverImage | default (include "odh-hub.image" .Values.images.hub) }}
- --KubeServingBackend.mlserver_image_pull_policy={{ .Values.images.pullPolicy }}
{{- end }}
{{- with .Values.serving.resources }}
{{- /* nested: JSON (traitlets warns this form is deprecated, but its key=value form cannot nest) */}}
- {{ printf "--KubeServingBackend.resources=%s" (toJson .) | quote }}
{{- end }}
{{- with .Values.serving.servingPodSelector }}
- --KubeServingBackend.serving_pod_selector
{{- range $k, $v := . }}
- {{ printf "%s=%s" $k $v | quote }}
{{- end }}
{{- end }}
- --KubeServingBackend.network_policy={{ if .Values.networkPolicy.enabled }}True{{ else }}False{{ end }}
{{- if and .Values.networkPolicy.enabled .Values.storage.enabled .Values.storage.networkPeers }}
{{- /* model-serving pods reach only the object store and DNS */}}
{{- range .Values.storage.networkPeers }}
- {{ printf "--KubeServingBackend.network_policy_egress_to=%s" (toJson .) | quote }}
{{- end }}
{{- range .Values.storage.ports }}
- --KubeServingBackend.network_policy_egress_ports={{ . }}
{{- end }}
{{- range .Values.networkPolicy.dnsPorts }}
- --KubeServingBackend.network_policy_dns_ports={{ . }}
{{- end }}
{{- end }}
{{- if .Values.spark.enabled }}
- --PlatformService.spark_clusters_class=odh_spawner.platform.kube_spark.KubeSparkClusters
- --KubeSparkClusters.namespace={{ .Release.Namespace }}
{{- end }}
{{- if .Values.kafka.bootstrap }}
{{- $ingest := .Values.kafka.ingest }}
- --PlatformService.kafka_bootstrap_servers={{ .Values.kafka.bootstrap }}
- --PlatformService.ingest_backend_class=odh_spawner.ingest.kube.KubeIngestBackend
- --KubeIngestBackend.ingest_mode={{ $ingest.backend }}
- --KubeIngestBackend.namespace={{ include "odh-hub.ingestNamespace" . }}
{{- if eq $ingest.backend "strimzi" }}
- --KubeIngestBackend.connect_cluster={{ required "kafka.ingest.connectCluster is required with kafka.ingest.backend=strimzi" $ingest.connectCluster }}
- --KubeIngestBackend.connect_namespace={{ include "odh-hub.ingestNamespace" . }}
- --KubeIngestBackend.strimzi_api_version={{ $ingest.strimziApiVersion }}
- --KubeIngestBackend.connector_class={{ $ingest.connectorClass }}
{{- else }}
- --KubeIngestBackend.worker_image={{ include "odh-hub.image" .Values.images.hub }}
- --KubeIngestBackend.image_pull_policy={{ .Values.images.pullPolicy }}
{{- end }}
{{- with .Values.storage.s3Endpoint }}
- --KubeIngestBackend.s3_endpoint={{ . }}
{{- end }}
{{- end }}
{{- if .Values.metrics.podUsage.enabled }}
- --PlatformService.pod_usage_class=odh_spawner.platform.kube_usage.KubePodUsage
{{- range (include "odh-hub.usageNamespaces" . | splitList " " | uniq) }}
- --KubePodUsage.namespaces={{ . }}
{{- end }}
{{- end }}
{{- if or .Values.quotas.default .Values.quotas.groups }}
{{- /* per-group limits, as JSON (nested) */}}
- {{ printf "--OdhQuotas.quotas=%s" (toJson .Values.quotas) | quote }}
{{- end }}
{{- if .Values.spark.enabled }}
- --SparkLimits.max_workers={{ .Values.spark.limits.maxWorkers }}
{{- end }}
{{- if .Values.storage.enabled }}
- --OdhStorage.admin_endpoint={{ .Values.storage.adminEndpoint }}
- --OdhStorage.admin_keys_file=/etc/odh-hub/rgw-admin
{{- with .Values.storage.quota.maxSize }}
- --OdhStorage.quota_max_size={{ . }}
{{- end }}
{{- with .Values.storage.s3Endpoint }}
- --OdhStorage.s3_endpoint={{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{- /* every egress needed by everyone: the cluster DNS (any address: clusters put it in different places) */ -}}
{{- define "odh-hub.dnsEgress" -}}
- ports:
  {{- range .Values.networkPolicy.dnsPorts }}
    - {port: {{ . }}, protocol: UDP}
    - {port: {{ . }}, protocol: TCP}
  {{- end }}
{{- end -}}
{{- /* hub and platform: anywhere but the cloud metadata address (they need the Kubernetes API, whose address
differs per cluster, and RGW) */ -}}
{{- define "odh-hub.anyButMetadata" -}}
- to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except: [169.254.169.254/32]
{{- end -}}
{{- /* Prometheus (metrics.serviceMonitor.networkPeers) scrapes a port, when the ServiceMonitors are on. Call:
include "odh-hub.prometheusIngress" (list . port) */ -}}
{{- define "odh-hub.prometheusIngress" -}}
{{- $root := index . 0 -}}
{{- $sm := $root.Values.metrics.serviceMonitor -}}
{{- if and $sm.enabled $sm.networkPeers }}
# Prometheus (metrics.serviceMonitor.networkPeers)
- ports: [{port: {{ index . 1 }}, protocol: TCP}]
  from:
    {{- toYaml $sm.networkPeers | nindent 4 }}
{{- end }}
{{- end -}}
