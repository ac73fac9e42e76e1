{{/*
<release>-rollgate, or fullnameOverride; cut to 63 characters because it is a label value
and a DNS-1123 label.
*/}}
{{- define "rollgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
"<fullname><suffix>", refused rather than cut when longer than max: a cut could make two
objects' names collide or change the name the README's kubectl commands use. A CronJob's
name may have 52 characters (its Jobs add 11), a Job's 63.
Call with (list $ "-suffix" max).
*/}}
{{- define "rollgate.objectName" -}}
{{- $ctx := index . 0 -}}
{{- $name := printf "%s%s" (include "rollgate.fullname" $ctx) (index . 1) -}}
{{- if gt (len $name) (index . 2) -}}
{{- fail (printf "name %q is longer than %d characters: set a shorter release name or fullnameOverride" $name (index . 2)) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "rollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rollgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rollgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
Everything the migrate Job needs is a hook too: Helm creates pre-install hooks before the
release's own objects, in weight order. before-hook-creation (and nothing else) keeps a
failed attempt's objects, and the Job's pod logs, until the next attempt replaces them.
Call with the weight.
*/}}
{{- define "rollgate.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}

{{/*
The post-deploy Job runs after the release's objects are applied: it waits for the
Deployment's rollout itself (--after-rollout), so it needs no `helm --wait`.
*/}}
{{- define "rollgate.postHookAnnotations" -}}
helm.sh/hook: post-install,post-upgrade
helm.sh/hook-weight: "0"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}

{{/*
migrations.postDeploy.deployment, required when the post-deploy Job is on.
*/}}
{{- define "rollgate.postDeployment" -}}
{{- required "migrations.postDeploy.deployment: the Deployment whose rollout the post-deploy Job waits for" .Values.migrations.postDeploy.deployment -}}
{{- end -}}

{{- define "rollgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
A version from values as text: a number given in a values file arrives as a float64 and
would print as 2.0240101120000e+13.
*/}}
{{- define "rollgate.version" -}}
{{- if kindIs "string" . -}}
{{- . -}}
{{- else -}}
{{- int64 . -}}
{{- end -}}
{{- end -}}

{{/*
The environment every rollgate container needs, the documented init containers included.
POD_NAME is the lease identity and applied_by; with POD_NAMESPACE the leader posts its
Events on the pod (the Role's events/create).
*/}}
{{- define "rollgate.env" -}}
- name: ROLLGATE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret | quote }}
      key: {{ .Values.database.secretKey | quote }}
{{- with .Values.database.directUrlKey }}
- name: ROLLGATE_DATABASE_DIRECT_URL
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.database.existingSecret | quote }}
      key: {{ . | quote }}
{{- end }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: ROLLGATE_CONFIG
  value: /etc/rollgate/config.yaml
{{- if include "rollgate.tlsCa" . }}
- name: PGSSLROOTCERT
  value: /var/run/rollgate/tls/ca.crt
{{- end }}
{{- if not .Values.migrations.autoMigrate }}
{{- /* config.yaml says so too; the env also holds where the config is not mounted. */}}
- name: ROLLGATE_AUTO_MIGRATE
  value: "false"
{{- end }}
{{- end -}}

{{- /* The CA for TLS to PostgreSQL: "secret" or "configMap" when one is set, else empty. */}}
{{- define "rollgate.tlsCa" -}}
{{- $tls := .Values.database.tls | default dict -}}
{{- if and $tls.caSecret $tls.caConfigMap -}}
{{- fail "database.tls: set caSecret or caConfigMap, not both" -}}
{{- else if $tls.caSecret -}}secret
{{- else if $tls.caConfigMap -}}configMap
{{- end -}}
{{- end -}}

{{- define "rollgate.volumeMounts" -}}
- name: rollgate-config
  mountPath: /etc/rollgate
  readOnly: true
{{- if include "rollgate.tlsCa" . }}
- name: rollgate-tls-ca
  mountPath: /var/run/rollgate/tls
  readOnly: true
{{- end }}
{{- if eq .Values.migrations.source "configMap" }}
- name: rollgate-migrations
  mountPath: /migrations
  readOnly: true
{{- end }}
{{- end -}}

{{- define "rollgate.volumes" -}}
- name: rollgate-config
  configMap:
    name: {{ include "rollgate.fullname" . }}-config
{{- with .Values.database.tls }}
{{- if eq (include "rollgate.tlsCa" $) "secret" }}
- name: rollgate-tls-ca
  secret:
    secretName: {{ .caSecret | quote }}
    items:
      - key: {{ .caKey | quote }}
        path: ca.crt
{{- else if eq (include "rollgate.tlsCa" $) "configMap" }}
- name: rollgate-tls-ca
  configMap:
    name: {{ .caConfigMap | quote }}
    items:
      - key: {{ .caKey | quote }}
        path: ca.crt
{{- end }}
{{- end }}
{{- if eq .Values.migrations.source "configMap" }}
- name: rollgate-migrations
  configMap:
    name: {{ include "rollgate.fullname" . }}-migrations
{{- end }}
{{- end -}}

{{/*
The pod of the migrate Jobs and of the rollback CronJob's Jobs: one definition, so a rollback
runs with exactly the migrate Job's identity, configuration and restrictions.
Call with (dict "ctx" $ "name" CONTAINER "env" EXTRA_ENV_LIST "args" ARGS_LIST); args
defaults to ["migrate"].
*/}}
{{- define "rollgate.podTemplate" -}}
{{- $ := .ctx -}}
metadata:
  labels:
    {{- include "rollgate.labels" $ | nindent 4 }}
    app.kubernetes.io/component: {{ .name }}
  {{- with $.Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  restartPolicy: Never
  {{- if $.Values.hostNetwork }}
  hostNetwork: true
  {{- end }}
  serviceAccountName: {{ include "rollgate.fullname" $ }}
  # The Lease and Events calls authenticate with this token.
  automountServiceAccountToken: true
  {{- with $.Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .name }}
      image: {{ include "rollgate.image" $ }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      args: {{ toJson (.args | default (list "migrate")) }}
      # rollgate writes its one-line summary to /dev/termination-log; the log tail is the
      # fallback when it could not (killed outright).
      terminationMessagePolicy: FallbackToLogsOnError
      env:
        {{- include "rollgate.env" $ | nindent 8 }}
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $.Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      volumeMounts:
        {{- include "rollgate.volumeMounts" $ | nindent 8 }}
      {{- with $.Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $.Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  volumes:
    {{- include "rollgate.volumes" $ | nindent 4 }}
  {{- with $.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/*
The Job spec shared by the migrate Jobs and the rollback CronJob's jobTemplate.
Call with (dict "ctx" $ "name" CONTAINER "env" EXTRA_ENV_LIST "args" ARGS_LIST).
*/}}
{{- define "rollgate.jobSpec" -}}
{{- $ := .ctx -}}
backoffLimit: {{ int64 $.Values.job.backoffLimit }}
activeDeadlineSeconds: {{ int64 $.Values.job.activeDeadlineSeconds }}
{{- if not (kindIs "invalid" $.Values.job.ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ int64 $.Values.job.ttlSecondsAfterFinished }}
{{- end }}
{{- if and $.Values.job.podFailurePolicy (semverCompare ">=1.26-0" $.Capabilities.KubeVersion.Version) }}
# Beta and on by default from Kubernetes 1.26. rollgate's exit codes that no retry can fix
# (1 bug, 2 usage, 3 configuration, 4 migration files, 5 history conflict, 6 a migration
# failed, 10 the API refused us: token or RBAC) fail the Job at once instead of burning
# backoffLimit. The retryable ones (7 database, 8 lease or timeout, 9 API unavailable, 128+N
# signal) match no rule, so they count against backoffLimit as usual. An eviction or
# preemption is not the migration's fault and is not counted at all.
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: {{ .name }}
        operator: In
        values: [1, 2, 3, 4, 5, 6, 10]
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
{{- end }}
template:
  {{- include "rollgate.podTemplate" . | nindent 2 }}
{{- end -}}
