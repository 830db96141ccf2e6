{{/*
Names. The full name prefixes every resource: the release name, with the
chart name appended unless the release name already contains it (release
"waymark" gives waymark-collector, waymark-query, ...).
*/}}
{{- define "waymark.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "waymark.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "waymark.collectorService" -}}{{ include "waymark.fullname" . }}-collector{{- end -}}
{{- define "waymark.queryService" -}}{{ include "waymark.fullname" . }}-query{{- end -}}
{{- define "waymark.agentService" -}}{{ include "waymark.fullname" . }}-agent{{- end -}}
{{- define "waymark.headlessService" -}}{{ include "waymark.fullname" . }}-headless{{- end -}}
{{- define "waymark.collectorHeadlessService" -}}{{ include "waymark.fullname" . }}-collector-headless{{- end -}}
{{- define "waymark.samplingConfigMap" -}}
{{- default (printf "%s-sampling" (include "waymark.fullname" .)) .Values.sampling.existingConfigMap -}}
{{- end -}}

{{- define "waymark.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "waymark.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "waymark.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Labels. Call with (dict "ctx" $ "component" "collector"). */}}
{{- define "waymark.selectorLabels" -}}
app.kubernetes.io/name: {{ include "waymark.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "waymark.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "waymark.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: waymark
{{- end -}}

{{/* The component label of the pod that runs the store's writer. */}}
{{- define "waymark.storeComponent" -}}
{{- if eq .Values.mode "allInOne" -}}all-in-one{{- else -}}collector{{- end -}}
{{- end -}}

{{/* "true" when the storage backend is Elasticsearch/OpenSearch, else empty. */}}
{{- define "waymark.es" -}}
{{- if eq (toString .Values.storage.type) "elasticsearch" -}}true{{- end -}}
{{- end -}}

{{/*
The component label of the pods behind the query Service: the store's pod,
except in distributed mode with Elasticsearch, where the query runs as a
Deployment of its own.
*/}}
{{- define "waymark.queryComponent" -}}
{{- if and (eq .Values.mode "distributed") (include "waymark.es" .) -}}query{{- else -}}{{ include "waymark.storeComponent" . }}{{- end -}}
{{- end -}}

{{/*
Checks the schema cannot express, and a second line of defence for the
ones it does (an install with --skip-schema-validation still meets these).
*/}}
{{- define "waymark.validate" -}}
{{- if not (has .Values.mode (list "allInOne" "distributed")) -}}
{{- fail (printf "mode must be allInOne or distributed, not %q" (toString .Values.mode)) -}}
{{- end -}}
{{- if eq .Values.storage.type "embedded" -}}
{{- if .Values.collector.autoscaling.enabled -}}
{{- fail "collector.autoscaling.enabled: the embedded store has a single writer on one volume, so the collector cannot be scaled out; autoscaling needs a shared storage backend (storage.type elasticsearch)" -}}
{{- end -}}
{{- if ne (int .Values.collector.replicas) 1 -}}
{{- fail (printf "collector.replicas: the embedded store has a single writer on one volume, so the collector runs exactly 1 replica (got %v)" .Values.collector.replicas) -}}
{{- end -}}
{{- else if eq (toString .Values.storage.type) "elasticsearch" -}}
{{- include "waymark.validateElasticsearch" . -}}
{{- else -}}
{{- fail (printf "storage.type must be embedded or elasticsearch, not %q" (toString .Values.storage.type)) -}}
{{- end -}}
{{- if and (or .Values.esIndexCleaner.enabled .Values.esRollover.enabled .Values.esRollover.policy.enabled) (not (include "waymark.es" .)) -}}
{{- fail "esIndexCleaner / esRollover: the index jobs are for storage.type elasticsearch" -}}
{{- end -}}
{{- if and .Values.sampling.existingConfigMap .Values.sampling.strategies -}}
{{- fail "sampling: set either strategies or existingConfigMap, not both" -}}
{{- end -}}
{{- $a := .Values.sampling.adaptive -}}
{{- $interval := float64 (include "waymark.durationNs" $a.calculationInterval) -}}
{{- $lookback := float64 (include "waymark.durationNs" $a.lookback) -}}
{{- if lt $interval 1e8 -}}
{{- fail (printf "sampling.adaptive.calculationInterval must be at least 100ms, not %q (Waymark refuses it at start-up)" (toString $a.calculationInterval)) -}}
{{- end -}}
{{- if lt $lookback $interval -}}
{{- fail (printf "sampling.adaptive.lookback %q must be at least sampling.adaptive.calculationInterval %q (Waymark refuses it at start-up)" (toString $a.lookback) (toString $a.calculationInterval)) -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $key, $port := .Values.ports -}}
{{- if and (eq $key "queryAdmin") (ne $.Values.mode "distributed") -}}{{- continue -}}{{- end -}}
{{- $p := toString (int $port) -}}
{{- if hasKey $seen $p -}}
{{- fail (printf "ports.%s and ports.%s are both %s; every Waymark port must differ" (get $seen $p) $key $p) -}}
{{- end -}}
{{- $_ := set $seen $p $key -}}
{{- end -}}
{{- end -}}

{{/*
Elasticsearch values the schema cannot judge, checked again for installs
that skip the schema.
*/}}
{{- define "waymark.validateElasticsearch" -}}
{{- $es := .Values.storage.elasticsearch -}}
{{- if not $es.urls -}}
{{- fail "storage.elasticsearch.urls: give the URLs of the Elasticsearch/OpenSearch cluster, e.g. [https://elasticsearch-master.elastic.svc:9200]" -}}
{{- end -}}
{{- range $es.urls -}}
{{- if not (regexMatch "^https?://[^\\s,]+$" (toString .)) -}}
{{- fail (printf "storage.elasticsearch.urls: %q is not an http:// or https:// URL" (toString .)) -}}
{{- end -}}
{{- end -}}
{{- range $ref := list "passwordSecret" "apiKeySecret" "bearerTokenSecret" "caConfigMap" -}}
{{- $v := get $es $ref | default dict -}}
{{- if and $v (or (not $v.name) (not $v.key)) -}}
{{- fail (printf "storage.elasticsearch.%s needs both name and key (got name %q, key %q)" $ref (toString $v.name) (toString $v.key)) -}}
{{- end -}}
{{- end -}}
{{- $kinds := list -}}
{{- range $ref := list "passwordSecret" "apiKeySecret" "bearerTokenSecret" -}}
{{- if get $es $ref -}}{{- $kinds = append $kinds $ref -}}{{- end -}}
{{- end -}}
{{- if gt (len $kinds) 1 -}}
{{- fail (printf "storage.elasticsearch: give one of passwordSecret (with username), apiKeySecret and bearerTokenSecret, not %s; Waymark refuses two kinds of credentials" (join " and " $kinds)) -}}
{{- end -}}
{{- if and $es.username (or $es.apiKeySecret $es.bearerTokenSecret) -}}
{{- fail "storage.elasticsearch.username is for basic auth (passwordSecret); leave it empty with apiKeySecret or bearerTokenSecret: Waymark refuses two kinds of credentials" -}}
{{- end -}}
{{- $cc := $es.clientCertSecret | default dict -}}
{{- if and $cc.name (or (not $cc.certKey) (not $cc.keyKey)) -}}
{{- fail (printf "storage.elasticsearch.clientCertSecret needs certKey and keyKey (got %q, %q): Waymark needs both the certificate and its key" (toString $cc.certKey) (toString $cc.keyKey)) -}}
{{- end -}}
{{- if and $cc.name (eq (toString $cc.certKey) (toString $cc.keyKey)) -}}
{{- fail "storage.elasticsearch.clientCertSecret: certKey and keyKey must be different keys of the Secret" -}}
{{- end -}}
{{- if and $es.deleteExpiredIndices $es.useAliases -}}
{{- fail "storage.elasticsearch.deleteExpiredIndices deletes dated indices, and with useAliases the indices are numbered (Waymark would ignore it): use esRollover.policy for a lifecycle policy that deletes them" -}}
{{- end -}}
{{- if and $es.passwordSecret (not $es.username) -}}
{{- fail "storage.elasticsearch.passwordSecret needs storage.elasticsearch.username: Waymark refuses a password without a username" -}}
{{- end -}}
{{- $pol := .Values.esRollover.policy -}}
{{- if $pol.enabled -}}
{{- if .Values.esRollover.enabled -}}
{{- fail "esRollover.policy.enabled and esRollover.enabled: choose one; the lifecycle policy rolls the indices over and deletes them inside the cluster, the rollover CronJobs do it from outside, and both together would roll over twice" -}}
{{- end -}}
{{- if not $es.useAliases -}}
{{- fail "esRollover.policy.enabled needs storage.elasticsearch.useAliases: true (the policy rolls the -write aliases over)" -}}
{{- end -}}
{{- if not (has (toString $pol.distribution) (list "elasticsearch" "opensearch")) -}}
{{- fail (printf "esRollover.policy.distribution must be elasticsearch or opensearch, not %q" (toString $pol.distribution)) -}}
{{- end -}}
{{- if lt (float64 (include "waymark.durationNs" $pol.deleteAfter)) (float64 (include "waymark.durationNs" $pol.rolloverAfter)) -}}
{{- fail (printf "esRollover.policy.deleteAfter %q is shorter than rolloverAfter %q: indices would be deleted while still written to" (toString $pol.deleteAfter) (toString $pol.rolloverAfter)) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.esRollover.enabled (not $es.useAliases) -}}
{{- fail "esRollover.enabled needs storage.elasticsearch.useAliases: true (rollover moves the -write and -read aliases)" -}}
{{- end -}}
{{- if and .Values.esIndexCleaner.enabled $es.useAliases -}}
{{- fail "esIndexCleaner deletes dated indices, and with storage.elasticsearch.useAliases the indices are numbered (rollover): use esRollover.lookback and your cluster's index lifecycle policies instead" -}}
{{- end -}}
{{- if and (eq .Values.mode "allInOne") .Values.collector.autoscaling.enabled -}}
{{- fail "collector.autoscaling.enabled applies to mode distributed; allInOne runs one pod" -}}
{{- end -}}
{{- end -}}

{{/*
A duration in the binary's syntax (0, 7d, 2w, 1h30m, 1.5s, 300us ...) in
nanoseconds, printed as a float. Every unit is a whole number of
nanoseconds, so whole and decimal amounts convert exactly enough to compare.
*/}}
{{- define "waymark.durationNs" -}}
{{- $ns := dict "ns" 1 "us" 1000 "µs" 1000 "μs" 1000 "ms" 1000000 "s" 1000000000 "m" 60000000000 "h" 3600000000000 "d" 86400000000000 "w" 604800000000000 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?[^0-9.]+" (toString .) -1 -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" . -}}
{{- $total = addf $total (mulf (float64 $num) (get $ns (trimPrefix $num .))) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{- define "waymark.samplingEnabled" -}}
{{- if or .Values.sampling.strategies .Values.sampling.existingConfigMap -}}true{{- end -}}
{{- end -}}

{{/*
Arguments. Each helper prints YAML list items; every listener binds
0.0.0.0 on the port from .Values.ports, the same number the container ports,
the Services and the probes use.
*/}}
{{- define "waymark.args.ingestListeners" -}}
- {{ printf "--otlp-grpc-listen=0.0.0.0:%d" (int .Values.ports.otlpGrpc) | quote }}
- {{ printf "--otlp-http-listen=0.0.0.0:%d" (int .Values.ports.otlpHttp) | quote }}
- {{ printf "--zipkin-listen=0.0.0.0:%d" (int .Values.ports.zipkin) | quote }}
- {{ printf "--jaeger-compact-listen=0.0.0.0:%d" (int .Values.ports.jaegerCompact) | quote }}
- {{ printf "--jaeger-binary-listen=0.0.0.0:%d" (int .Values.ports.jaegerBinary) | quote }}
- {{ printf "--sampling-listen=0.0.0.0:%d" (int .Values.ports.sampling) | quote }}
- {{ printf "--jaeger-grpc-listen=0.0.0.0:%d" (int .Values.ports.jaegerGrpc) | quote }}
- {{ printf "--jaeger-http-listen=0.0.0.0:%d" (int .Values.ports.jaegerHttp) | quote }}
{{- end -}}

{{- define "waymark.args.queryListeners" -}}
- {{ printf "--query-listen=0.0.0.0:%d" (int .Values.ports.queryHttp) | quote }}
- {{ printf "--query-grpc-listen=0.0.0.0:%d" (int .Values.ports.queryGrpc) | quote }}
{{- end -}}

{{/* Receiver limits, the pipeline and the sampling file (every ingesting mode). */}}
{{- define "waymark.args.ingest" -}}
- {{ printf "--max-request-bytes=%d" (int64 .Values.limits.maxRequestBytes) | quote }}
- {{ printf "--max-spans-per-request=%d" (int64 .Values.limits.maxSpansPerRequest) | quote }}
- {{ printf "--max-attributes-per-span=%d" (int64 .Values.limits.maxAttributesPerSpan) | quote }}
- {{ printf "--max-string-bytes=%d" (int64 .Values.limits.maxStringBytes) | quote }}
- {{ printf "--queue-spans=%d" (int64 .Values.pipeline.queueSpans) | quote }}
- {{ printf "--max-batch-spans=%d" (int64 .Values.pipeline.maxBatchSpans) | quote }}
- {{ printf "--queue-max-wait=%s" .Values.pipeline.queueMaxWait | quote }}
{{- with .Values.otlp.corsAllowedOrigins }}
- {{ printf "--cors-allowed-origins=%s" (join "," .) | quote }}
{{- end }}
{{- if include "waymark.samplingEnabled" . }}
- "--sampling-strategies-file=/etc/waymark/sampling/strategies.json"
{{- end }}
{{- end -}}

{{/*
Adaptive sampling. Only the store's writer (all-in-one, collector) runs it:
it counts what reaches storage and keeps its state in the store (the data
volume, or with Elasticsearch the index <prefix>waymark-sampling, which the
collectors share: one of them, holding a lease there, computes). Rendered
whether enabled or not, so that extraArgs cannot set these flags a second
time.
*/}}
{{- define "waymark.args.adaptive" -}}
{{- $a := .Values.sampling.adaptive -}}
- {{ printf "--sampling-adaptive=%t" $a.enabled | quote }}
- {{ printf "--adaptive-target-samples-per-second=%v" $a.targetSamplesPerSecond | quote }}
- {{ printf "--adaptive-delta-tolerance=%v" $a.deltaTolerance | quote }}
- {{ printf "--adaptive-calculation-interval=%s" $a.calculationInterval | quote }}
- {{ printf "--adaptive-lookback=%s" $a.lookback | quote }}
- {{ printf "--adaptive-initial-sampling-probability=%v" $a.initialSamplingProbability | quote }}
- {{ printf "--adaptive-min-sampling-probability=%v" $a.minSamplingProbability | quote }}
- {{ printf "--adaptive-min-samples-per-second=%v" $a.minSamplesPerSecond | quote }}
- {{ printf "--adaptive-max-increase=%v" $a.maxIncrease | quote }}
{{- end -}}

{{/*
Elasticsearch/OpenSearch: the connection and index flags, the same for
the collector, the query, all-in-one and the index jobs. The password comes
from the environment (WAYMARK_ES_PASSWORD, a secretKeyRef), the API key and
the CA from files mounted under /etc/waymark.
*/}}
{{- define "waymark.args.es" -}}
{{- $es := .Values.storage.elasticsearch -}}
- "--storage-backend=elasticsearch"
- {{ printf "--es-urls=%s" (join "," $es.urls) | quote }}
{{- if $es.username }}
- {{ printf "--es-username=%s" $es.username | quote }}
{{- end }}
{{- with $es.apiKeySecret }}
- {{ printf "--es-api-key-file=%s/%s" (include "waymark.esApiKeyDir" $) .key | quote }}
{{- end }}
{{- with $es.bearerTokenSecret }}
- {{ printf "--es-bearer-token-file=%s/%s" (include "waymark.esBearerTokenDir" $) .key | quote }}
{{- end }}
{{- with $es.caConfigMap }}
- {{ printf "--es-ca-file=%s/%s" (include "waymark.esCaDir" $) .key | quote }}
{{- end }}
{{- if include "waymark.esClientCert" $ }}
- {{ printf "--es-client-cert-file=%s/%s" (include "waymark.esClientCertDir" $) $es.clientCertSecret.certKey | quote }}
- {{ printf "--es-client-key-file=%s/%s" (include "waymark.esClientCertDir" $) $es.clientCertSecret.keyKey | quote }}
{{- end }}
- {{ printf "--es-tls-skip-verify=%t" $es.tlsSkipVerify | quote }}
{{- if $es.indexPrefix }}
- {{ printf "--es-index-prefix=%s" $es.indexPrefix | quote }}
{{- end }}
- {{ printf "--es-index-date-separator=%s" $es.indexDateSeparator | quote }}
- {{ printf "--es-span-rollover=%s" $es.spanRollover | quote }}
- {{ printf "--es-service-rollover=%s" $es.serviceRollover | quote }}
- {{ printf "--es-use-aliases=%t" $es.useAliases | quote }}
- {{ printf "--es-tags-as-fields-all=%t" $es.tagsAsFieldsAll | quote }}
- {{ printf "--es-create-index-templates=%t" $es.createIndexTemplates | quote }}
- {{ printf "--es-shards=%d" (int64 $es.shards) | quote }}
- {{ printf "--es-replicas=%d" (int64 $es.replicas) | quote }}
- {{ printf "--es-max-span-age=%s" $es.maxSpanAge | quote }}
- {{ printf "--es-timeout=%s" $es.timeout | quote }}
- {{ printf "--es-gzip=%t" $es.gzip | quote }}
{{- end -}}

{{- define "waymark.esApiKeyDir" -}}/etc/waymark/es-api-key{{- end -}}
{{- define "waymark.esCaDir" -}}/etc/waymark/es-ca{{- end -}}
{{- define "waymark.esBearerTokenDir" -}}/etc/waymark/es-bearer-token{{- end -}}
{{- define "waymark.esClientCertDir" -}}/etc/waymark/es-client-cert{{- end -}}
{{/* "true" when a client certificate Secret is named. */}}
{{- define "waymark.esClientCert" -}}
{{- $c := .Values.storage.elasticsearch.clientCertSecret | default dict -}}
{{- if $c.name -}}true{{- end -}}
{{- end -}}

{{/* The store's writer: the embedded store's flags, or Elasticsearch's. */}}
{{- define "waymark.args.storage" -}}
{{- if include "waymark.es" . -}}
{{ include "waymark.args.es" . }}
{{- $del := .Values.storage.elasticsearch.deleteExpiredIndices }}
- {{ printf "--es-delete-expired-indices=%t" $del | quote }}
{{- if $del }}
- {{ printf "--retention=%s" .Values.storage.embedded.retention | quote }}
{{- end }}
{{- else -}}
- "--data-dir=/var/lib/waymark"
- {{ printf "--fsync=%s" .Values.storage.embedded.fsync | quote }}
- {{ printf "--retention=%s" .Values.storage.embedded.retention | quote }}
- {{ printf "--head-max-age=%s" .Values.storage.embedded.headMaxAge | quote }}
- {{ printf "--head-max-spans=%d" (int64 .Values.storage.embedded.headMaxSpans) | quote }}
- {{ printf "--head-max-bytes=%d" (int64 .Values.storage.embedded.headMaxBytes) | quote }}
- {{ printf "--zstd-level=%d" (int64 .Values.storage.embedded.zstdLevel) | quote }}
- {{ printf "--storage-min-free-bytes=%d" (int64 .Values.storage.embedded.minFreeBytes) | quote }}
- {{ printf "--storage-min-free-percent=%v" .Values.storage.embedded.minFreePercent | quote }}
{{- end -}}
{{- end -}}

{{- define "waymark.args.tail" -}}
- {{ printf "--log-level=%s" .Values.logLevel | quote }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "waymark.args.allInOne" -}}
- "all-in-one"
- {{ printf "--admin-listen=0.0.0.0:%d" (int .Values.ports.admin) | quote }}
{{ include "waymark.args.ingestListeners" . }}
{{ include "waymark.args.queryListeners" . }}
{{ include "waymark.args.storage" . }}
{{ include "waymark.args.ingest" . }}
{{ include "waymark.args.adaptive" . }}
- {{ printf "--max-clock-skew-adjustment=%s" .Values.query.maxClockSkewAdjustment | quote }}
{{ include "waymark.args.tail" . }}
{{- end -}}

{{- define "waymark.args.collector" -}}
- "collector"
- {{ printf "--admin-listen=0.0.0.0:%d" (int .Values.ports.admin) | quote }}
{{ include "waymark.args.ingestListeners" . }}
{{ include "waymark.args.storage" . }}
{{ include "waymark.args.ingest" . }}
{{ include "waymark.args.adaptive" . }}
{{ include "waymark.args.tail" . }}
{{- end -}}

{{/* The query process: read-only over the collector's data directory, or over Elasticsearch. */}}
{{- define "waymark.args.query" -}}
- "query"
- {{ printf "--admin-listen=0.0.0.0:%d" (int .Values.ports.queryAdmin) | quote }}
{{ include "waymark.args.queryListeners" . }}
{{- if include "waymark.es" . }}
{{ include "waymark.args.es" . }}
{{- else }}
- "--data-dir=/var/lib/waymark"
{{- end }}
- {{ printf "--max-clock-skew-adjustment=%s" .Values.query.maxClockSkewAdjustment | quote }}
{{ include "waymark.args.tail" . }}
{{- end -}}

{{/*
The arguments of one container, refusing a flag given twice (clap would
refuse it at start-up and the pod would crash-loop): extraArgs may only add
flags the chart does not set from values. Call with (dict "ctx" $ "args" "waymark.args.collector").
*/}}
{{- define "waymark.args.checked" -}}
{{- $text := include .args (default .ctx .argsCtx) -}}
{{- $seen := dict -}}
{{- range fromYamlArray $text -}}
{{- if hasPrefix "--" . -}}
{{- $flag := index (splitList "=" .) 0 -}}
{{- if hasKey $seen $flag -}}
{{- fail (printf "extraArgs: %s is already set by the chart from its values; set that value instead of passing the flag" $flag) -}}
{{- end -}}
{{- $_ := set $seen $flag true -}}
{{- end -}}
{{- end -}}
{{- trim $text -}}
{{- end -}}

{{/* The index jobs. Call with (dict "ctx" $ "args" (list "es-cleaner" "7")). */}}
{{- define "waymark.args.esJob" -}}
{{- range .args }}
- {{ . | quote }}
{{- end }}
{{ include "waymark.args.es" .ctx }}
{{ include "waymark.args.tail" .ctx }}
{{- end -}}

{{/*
The agents' collectors: the headless collector Service, whose name resolves
to every ready collector pod. The agent spreads over the addresses (a
per-process starting point, the next one every 5 minutes and on failure);
through the ClusterIP Service each agent's long-lived gRPC connection
would stay on one collector pod.
*/}}
{{- define "waymark.agentCollectors" -}}
{{- if .Values.agent.collectors -}}
{{- join "," .Values.agent.collectors -}}
{{- else -}}
{{- printf "%s.%s.svc:%d" (include "waymark.collectorHeadlessService" .) .Release.Namespace (int .Values.ports.otlpGrpc) -}}
{{- end -}}
{{- end -}}

{{- define "waymark.args.agent" -}}
- "agent"
- {{ printf "--admin-listen=0.0.0.0:%d" (int .Values.ports.admin) | quote }}
{{ include "waymark.args.ingestListeners" . }}
- "--data-dir=/var/lib/waymark"
- "--queue-dir=/var/lib/waymark/agent-queue"
- {{ printf "--collector=%s" (include "waymark.agentCollectors" .) | quote }}
{{- if not .Values.agent.collectors }}
- {{ printf "--sampling-collector=%s.%s.svc:%d" (include "waymark.collectorService" .) .Release.Namespace (int .Values.ports.jaegerGrpc) | quote }}
{{- end }}
- {{ printf "--queue-max-bytes=%d" (int64 .Values.agent.queueMaxBytes) | quote }}
- {{ printf "--forward-gzip=%t" .Values.agent.forwardGzip | quote }}
{{ include "waymark.args.ingest" . }}
{{ include "waymark.args.tail" . }}
{{- end -}}

{{/*
Container ports. Names are what the Services' targetPorts and the probes
refer to.
*/}}
{{- define "waymark.ports.ingest" -}}
- name: otlp-grpc
  containerPort: {{ int .Values.ports.otlpGrpc }}
  protocol: TCP
- name: otlp-http
  containerPort: {{ int .Values.ports.otlpHttp }}
  protocol: TCP
- name: zipkin
  containerPort: {{ int .Values.ports.zipkin }}
  protocol: TCP
- name: jaeger-compact
  containerPort: {{ int .Values.ports.jaegerCompact }}
  protocol: UDP
- name: jaeger-binary
  containerPort: {{ int .Values.ports.jaegerBinary }}
  protocol: UDP
- name: sampling
  containerPort: {{ int .Values.ports.sampling }}
  protocol: TCP
- name: jaeger-grpc
  containerPort: {{ int .Values.ports.jaegerGrpc }}
  protocol: TCP
- name: jaeger-http
  containerPort: {{ int .Values.ports.jaegerHttp }}
  protocol: TCP
{{- end -}}

{{- define "waymark.ports.query" -}}
- name: query-http
  containerPort: {{ int .Values.ports.queryHttp }}
  protocol: TCP
- name: query-grpc
  containerPort: {{ int .Values.ports.queryGrpc }}
  protocol: TCP
{{- end -}}

{{/*
Probes on the admin port a container really serves. Call with
(dict "ctx" $ "port" "admin"): the port is the container port's name. An
optional "startupFactor" multiplies the startup probe's failureThreshold:
the query container of the collector pod gets 2, since it may first wait
for the collector to create the store and then open the store itself.
*/}}
{{- define "waymark.probes" -}}
{{- $p := .ctx.Values.probes -}}
{{- $factor := int (default 1 .startupFactor) -}}
startupProbe:
  httpGet:
    path: /ready
    port: {{ .port }}
  periodSeconds: {{ int $p.startup.periodSeconds }}
  failureThreshold: {{ mul (int $p.startup.failureThreshold) $factor }}
  timeoutSeconds: {{ int $p.startup.timeoutSeconds }}
livenessProbe:
  httpGet:
    path: /health
    port: {{ .port }}
  periodSeconds: {{ int $p.liveness.periodSeconds }}
  failureThreshold: {{ int $p.liveness.failureThreshold }}
  timeoutSeconds: {{ int $p.liveness.timeoutSeconds }}
readinessProbe:
  httpGet:
    path: /ready
    port: {{ .port }}
  periodSeconds: {{ int $p.readiness.periodSeconds }}
  failureThreshold: {{ int $p.readiness.failureThreshold }}
  timeoutSeconds: {{ int $p.readiness.timeoutSeconds }}
{{- end -}}

{{/*
Environment of the Waymark containers: the Elasticsearch password (from its
Secret) for those that use the store, then extraEnv. The agents get
extraEnv only: call with (dict "Values" .Values "agent" true).
*/}}
{{- define "waymark.env" -}}
{{- $env := list -}}
{{- if and (not .agent) (eq (toString .Values.storage.type) "elasticsearch") -}}
{{- with .Values.storage.elasticsearch.passwordSecret -}}
{{- $env = append $env (dict "name" "WAYMARK_ES_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" .name "key" .key))) -}}
{{- end -}}
{{- end -}}
{{- $env = concat $env .Values.extraEnv -}}
{{- with $env }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Volumes and mounts of the Elasticsearch credentials and CA: the API key,
the bearer token and the client certificate from Secrets, the CA from a
ConfigMap, each key as one file. Nothing when the backend is embedded or
none is set.
*/}}
{{- define "waymark.esVolumes" -}}
{{- if include "waymark.es" . -}}
{{- with .Values.storage.elasticsearch.apiKeySecret }}
- name: es-api-key
  secret:
    secretName: {{ .name | quote }}
    items:
      - key: {{ .key | quote }}
        path: {{ .key | quote }}
{{- end }}
{{- with .Values.storage.elasticsearch.bearerTokenSecret }}
- name: es-bearer-token
  secret:
    secretName: {{ .name | quote }}
    items:
      - key: {{ .key | quote }}
        path: {{ .key | quote }}
{{- end }}
{{- if include "waymark.esClientCert" . }}
{{- with .Values.storage.elasticsearch.clientCertSecret }}
- name: es-client-cert
  secret:
    secretName: {{ .name | quote }}
    items:
      - key: {{ .certKey | quote }}
        path: {{ .certKey | quote }}
      - key: {{ .keyKey | quote }}
        path: {{ .keyKey | quote }}
{{- end }}
{{- end }}
{{- with .Values.storage.elasticsearch.caConfigMap }}
- name: es-ca
  configMap:
    name: {{ .name | quote }}
    items:
      - key: {{ .key | quote }}
        path: {{ .key | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{- define "waymark.esMounts" -}}
{{- if include "waymark.es" . -}}
{{- if .Values.storage.elasticsearch.apiKeySecret }}
- name: es-api-key
  mountPath: {{ include "waymark.esApiKeyDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.storage.elasticsearch.bearerTokenSecret }}
- name: es-bearer-token
  mountPath: {{ include "waymark.esBearerTokenDir" . }}
  readOnly: true
{{- end }}
{{- if include "waymark.esClientCert" . }}
- name: es-client-cert
  mountPath: {{ include "waymark.esClientCertDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.storage.elasticsearch.caConfigMap }}
- name: es-ca
  mountPath: {{ include "waymark.esCaDir" . }}
  readOnly: true
{{- end }}
{{- end -}}
{{- end -}}

{{/* Pod-level settings shared by the workloads. Call with (dict "ctx" $ "pod" .Values.allInOne). */}}
{{- define "waymark.podSpecCommon" -}}
serviceAccountName: {{ include "waymark.serviceAccountName" .ctx }}
automountServiceAccountToken: {{ .ctx.Values.serviceAccount.automountToken }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ int .pod.terminationGracePeriodSeconds }}
{{- with .pod.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .pod.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .pod.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod template metadata. Call with (dict "ctx" $ "pod" ... "component" ...). */}}
{{- define "waymark.podMetadata" -}}
labels:
  {{- include "waymark.labels" (dict "ctx" .ctx "component" .component) | nindent 2 }}
  {{- with .pod.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- /* No checksum of the sampling strategies: Waymark re-reads the file
when the ConfigMap changes, without a restart (and its WAL replay). */}}
{{- with .pod.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "waymark.samplingVolume" -}}
{{- if include "waymark.samplingEnabled" . }}
- name: sampling
  configMap:
    name: {{ include "waymark.samplingConfigMap" . }}
{{- end }}
{{- end -}}

{{- define "waymark.samplingMount" -}}
{{- if include "waymark.samplingEnabled" . }}
- name: sampling
  mountPath: /etc/waymark/sampling
  readOnly: true
{{- end }}
{{- end -}}

{{/* The store's PersistentVolumeClaim template. */}}
{{- define "waymark.volumeClaimTemplates" -}}
{{- $p := .Values.storage.embedded.persistence -}}
{{- if and $p.enabled (not (include "waymark.es" .)) }}
volumeClaimTemplates:
  - metadata:
      name: data
      labels:
        {{- include "waymark.selectorLabels" (dict "ctx" . "component" (include "waymark.storeComponent" .)) | nindent 8 }}
      {{- with $p.annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      accessModes:
        {{- toYaml $p.accessModes | nindent 8 }}
      {{- with $p.storageClassName }}
      storageClassName: {{ . | quote }}
      {{- end }}
      resources:
        requests:
          storage: {{ $p.size | quote }}
{{- end }}
{{- end -}}

{{/*
Pod volumes of the store's pod (the PVC comes from volumeClaimTemplates),
and of the pods that use Elasticsearch (no data volume: nothing is
written locally).
*/}}
{{- define "waymark.storeVolumes" -}}
{{- $v := "" -}}
{{- if and (not (include "waymark.es" .)) (not .Values.storage.embedded.persistence.enabled) -}}
{{- $v = "- name: data\n  emptyDir: {}" -}}
{{- end -}}
{{- $v = printf "%s%s\n%s" $v (include "waymark.samplingVolume" .) (include "waymark.esVolumes" .) -}}
{{- if trim $v }}
volumes:
  {{- trim $v | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Service ports of the receivers, by the container ports' names. */}}
{{- define "waymark.servicePorts.ingest" -}}
- name: otlp-grpc
  port: {{ int .Values.ports.otlpGrpc }}
  targetPort: otlp-grpc
  protocol: TCP
  appProtocol: grpc
- name: otlp-http
  port: {{ int .Values.ports.otlpHttp }}
  targetPort: otlp-http
  protocol: TCP
- name: zipkin
  port: {{ int .Values.ports.zipkin }}
  targetPort: zipkin
  protocol: TCP
- name: jaeger-compact
  port: {{ int .Values.ports.jaegerCompact }}
  targetPort: jaeger-compact
  protocol: UDP
- name: jaeger-binary
  port: {{ int .Values.ports.jaegerBinary }}
  targetPort: jaeger-binary
  protocol: UDP
- name: sampling
  port: {{ int .Values.ports.sampling }}
  targetPort: sampling
  protocol: TCP
- name: jaeger-grpc
  port: {{ int .Values.ports.jaegerGrpc }}
  targetPort: jaeger-grpc
  protocol: TCP
  appProtocol: grpc
- name: jaeger-http
  port: {{ int .Values.ports.jaegerHttp }}
  targetPort: jaeger-http
  protocol: TCP
{{- end -}}

{{/* One container of an index job: the image, the arguments with the connection flags, the credentials. */}}
{{- define "waymark.jobContainer" -}}
{{- $ctx := .ctx -}}
- name: {{ .name }}
  image: {{ include "waymark.image" $ctx | quote }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  args:
    {{- include "waymark.args.checked" (dict "ctx" $ctx "args" "waymark.args.esJob" "argsCtx" (dict "ctx" $ctx "args" .args)) | nindent 4 }}
  {{- with include "waymark.env" $ctx }}{{ . | trim | nindent 2 }}{{ end }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  securityContext:
    {{- toYaml $ctx.Values.securityContext | nindent 4 }}
  {{- with include "waymark.esMounts" $ctx | trim }}
  volumeMounts:
    {{- . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/*
The pod spec of an index job. Call with (dict "ctx" $ "name" "es-rollover"
"args" (list "es-rollover" "init") "resources" ... "serviceAccount" true).
An optional "before", a list of (dict "name" ... "args" ...), runs as init
containers first, in order, each to its end.
*/}}
{{- define "waymark.jobPodSpec" -}}
{{- $ctx := .ctx -}}
{{- if .serviceAccount -}}
serviceAccountName: {{ include "waymark.serviceAccountName" $ctx }}
{{ end -}}
automountServiceAccountToken: false
restartPolicy: OnFailure
{{- with $ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $ctx.Values.podSecurityContext | nindent 2 }}
{{- with .before }}
initContainers:
  {{- range . }}
  {{- include "waymark.jobContainer" (dict "ctx" $ctx "name" .name "args" .args "resources" $.resources) | nindent 2 }}
  {{- end }}
{{- end }}
containers:
  {{- include "waymark.jobContainer" (dict "ctx" $ctx "name" .name "args" .args "resources" .resources) | nindent 2 }}
{{- with include "waymark.esVolumes" $ctx | trim }}
volumes:
  {{- . | nindent 2 }}
{{- end }}
{{- end -}}
