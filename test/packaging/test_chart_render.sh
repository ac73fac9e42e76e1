#!/usr/bin/env bash
# charts/rollgate rendered by the real helm: `helm lint --strict` with the values schema, the
# schema's refusals, and a matrix of `helm template` runs whose objects are checked as data
# (yq/jq), not as text: hooks and weights, RBAC, the Job and CronJob pods, podFailurePolicy
# by Kubernetes version, config.yaml, which is also fed to rollgate itself. Needs RG_REPO,
# RG_TOOLS and RG_STATIC_BIN.
# shellcheck disable=SC2016 # jq programs: their $ is jq's, in single quotes on purpose
. "$RG_REPO/test/packaging/lib.sh"

chart=$RG_REPO/charts/rollgate
work=$t_scratch
ns=ns1

# jq definitions over the slurped documents of one render.
P='def docs: [.[] | select(. != null)];
def kind(k): docs[] | select(.kind == k);
def named(k; n): kind(k) | select(.metadata.name == n);
def job: named("Job"; "myapp-rollgate-migrate");
def cron: named("CronJob"; "myapp-rollgate-rollback");
def jobpod: job.spec.template.spec;
def cronpod: cron.spec.jobTemplate.spec.template.spec;
def envmap: [.containers[0].env[] | {key: .name, value: (.value // .valueFrom)}] | from_entries;
def mountmap: [.containers[0].volumeMounts[] | {key: .mountPath, value: .}] | from_entries;
def volmap: [.volumes[] | {key: .name, value: .}] | from_entries;
def config: named("ConfigMap"; "myapp-rollgate-config").data["config.yaml"];
# Pod Security Standards, "restricted" profile (v1.25+), for one pod spec.
def restricted:
  (.securityContext // {}) as $p
  | ([.containers[], (.initContainers // [])[]]) as $cs
  | ($cs | all(.securityContext.allowPrivilegeEscalation == false))
    and ($cs | all((.securityContext.capabilities.drop // []) | index("ALL") != null))
    and ($cs | all(((.securityContext.capabilities.add // []) - ["NET_BIND_SERVICE"]) == []))
    and ($cs | all(.securityContext.privileged != true))
    and ($cs | all((.securityContext.runAsNonRoot // $p.runAsNonRoot) == true))
    and ($cs | all((.securityContext.runAsUser // $p.runAsUser // 1) != 0))
    and ($cs | all((.securityContext.seccompProfile.type // $p.seccompProfile.type)
                   | IN("RuntimeDefault", "Localhost")))
    and ($cs | all((.ports // []) | all(.hostPort == null or .hostPort == 0)))
    and (.hostNetwork != true and .hostPID != true and .hostIPC != true)
    and ((.volumes // []) | all(keys - ["name"] | .[0]
         | IN("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
              "persistentVolumeClaim", "projected", "secret")));'

# render NAME HELM_TEMPLATE_ARGS...: $work/NAME.yaml, and a check that helm succeeded.
render() {
    local name=$1
    shift
    if helm template myapp "$chart" --namespace "$ns" "$@" >"$work/$name.yaml" 2>"$work/$name.err"; then
        t_ok "render $name"
    else
        t_fail "render $name" "$(tail -n 5 "$work/$name.err")"
    fi
}

# q NAME FILTER: the filter's compact, key-sorted JSON over render NAME.
q() { yq -c -S -s "$P $2" "$work/$1.yaml" 2>&1; }

# check_json CHECK RENDER FILTER WANT: the filter's value equals the JSON WANT.
check_json() {
    check_eq "$1" "$(q "$2" "$3")" "$(jq -c -S . <<<"$4")"
}

# check_true CHECK RENDER FILTER
check_true() { check_json "$1" "$2" "$3" true; }

# the parsed config.yaml of render NAME, as compact sorted JSON
config_of() { q "$1" config | jq -r . | yq -c -S .; }

# check_rejects CHECK PATTERN ARGS...: lint and template both refuse ARGS, naming PATTERN.
# With only=template, just template: lint reports a template's `fail` as [INFO] and does not
# compare kubeVersion.
check_rejects() {
    local name=$1 pat=$2 cmd o rc
    shift 2
    for cmd in ${only:-lint template}; do
        rc=0
        if [ "$cmd" = lint ]; then
            o=$(helm lint --strict "$chart" "$@" 2>&1) || rc=$?
        else
            o=$(helm template myapp "$chart" "$@" 2>&1) || rc=$?
        fi
        if [ "$rc" -ne 0 ] && grep -Eq -- "$pat" <<<"$o"; then
            t_ok "$cmd refuses $name"
        else
            t_fail "$cmd refuses $name" "exit $rc, want non-zero and /$pat/: $(tail -n 5 <<<"$o")"
        fi
    done
}

# ---------------------------------------------------------------- values files of the matrix

cat >"$work/cm.values.yaml" <<'EOF'
migrations:
  source: configMap
  files:
    0001_create_users.up.sql: |
      -- rollgate:lock-timeout=2s
      CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
    0001_create_users.down.sql: |
      DROP TABLE users;
EOF

# A timestamp version from a values file arrives as a float64 in the templates.
cat >"$work/ts.values.yaml" <<'EOF'
migrations:
  target: 20240101120000
rollback:
  target: 20231231235959
EOF

cat >"$work/extras.values.yaml" <<'EOF'
extraEnv:
  - name: ROLLGATE_DATABASE_LOCK_RETRIES
    value: "9"
nodeSelector:
  disktype: ssd
tolerations:
  - key: dedicated
    operator: Equal
    value: migrations
    effect: NoSchedule
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: zone, operator: In, values: [a]}
podAnnotations:
  example.com/team: db
imagePullSecrets:
  - name: regcred
resources:
  requests: {cpu: 100m, memory: 48Mi}
  limits: {memory: 96Mi}
EOF

digest=sha256:$(printf '%064d' 7)

# name|helm args: each is linted and rendered.
matrix=(
    "def|"
    "noauto|--set migrations.autoMigrate=false"
    "target|--set migrations.target=42 --set rollback.target=7"
    "ts|-f $work/ts.values.yaml"
    "cm|-f $work/cm.values.yaml"
    "k120|--kube-version 1.20.2"
    "k125|--kube-version 1.25.0"
    "k126|--kube-version 1.26.0"
    "k131|--kube-version 1.31.0"
    "k131nopfp|--kube-version 1.31.0 --set job.podFailurePolicy=false"
    "tag|--set image.tag=1.2.3"
    "digest|--set image.tag=1.2.3 --set image.digest=$digest"
    "secret|--set database.existingSecret=app-db --set database.secretKey=dsn"
    "direct|--set database.existingSecret=app-db --set database.directUrlKey=direct"
    "nottl|--set job.ttlSecondsAfterFinished=null --set job.backoffLimit=0 --set job.activeDeadlineSeconds=60"
    "norollback|--set rollback.enabled=false"
    "extras|-f $work/extras.values.yaml"
    "override|--set fullnameOverride=db-migrations"
    "post|--set migrations.postDeploy.enabled=true --set migrations.postDeploy.deployment=web"
    "postnoauto|--set migrations.postDeploy.enabled=true --set migrations.postDeploy.deployment=web --set migrations.autoMigrate=false"
    "hostnet|--set hostNetwork=true"
)

# ---------------------------------------------------------------- lint

check "lint --strict defaults" helm lint --strict "$chart"
for entry in "${matrix[@]}"; do
    name=${entry%%|*}
    read -ra args <<<"${entry#*|}"
    check "lint --strict $name" helm lint --strict "$chart" "${args[@]}"
    render "$name" "${args[@]}"
done

# ---------------------------------------------------------------- the schema refuses

check_rejects "a non-boolean autoMigrate" 'migrations\.autoMigrate' --set migrations.autoMigrate=maybe
check_rejects "an unknown top-level key" 'Additional property bogus' --set bogus=1
check_rejects "an unknown nested key" 'job: Additional property retries' --set job.retries=3
check_rejects "a negative backoffLimit" 'job\.backoffLimit' --set job.backoffLimit=-1
check_rejects "an unknown migrations.source" 'migrations\.source' --set migrations.source=git
check_rejects "a source configMap without files" 'migrations\.files' --set migrations.source=configMap
check_rejects "a duration that is not one" 'lease\.duration' --set lease.duration=15x
check_rejects "a number where a duration string belongs" 'database\.connectRetry' --set database.connectRetry=60
check_rejects "a target that is no version" 'migrations\.target' --set migrations.target=v3
check_rejects "a negative target" 'migrations\.target' --set migrations.target=-1
check_rejects "an unknown onNewerSchema" 'migrations\.onNewerSchema' --set migrations.onNewerSchema=ignore
check_rejects "a file name a ConfigMap cannot hold" 'migrations\.files' \
    -f "$work/cm.values.yaml" --set-string 'migrations.files.data/x\.sql=SELECT 1;'
check_rejects "postDeploy enabled without a deployment" 'migrations\.postDeploy' \
    --set migrations.postDeploy.enabled=true
check_rejects "a postDeploy deployment that is no name" 'migrations\.postDeploy\.deployment' \
    --set migrations.postDeploy.enabled=true --set migrations.postDeploy.deployment=Web/x
only=template check_rejects "Kubernetes older than 1.20" 'kubeVersion|Kubernetes version' --kube-version 1.19.0
only=template check_rejects "a CronJob name over 52 characters" 'longer than 52' \
    --set fullnameOverride=a-forty-four-character-long-name-for-testing-x

# ---------------------------------------------------------------- objects, hooks, labels

check_json "default objects" def '[docs[] | "\(.kind)/\(.metadata.name)"] | sort' '[
  "ConfigMap/myapp-rollgate-config", "CronJob/myapp-rollgate-rollback",
  "Job/myapp-rollgate-migrate", "Role/myapp-rollgate", "RoleBinding/myapp-rollgate",
  "ServiceAccount/myapp-rollgate"]'

hooks='[docs[] | "\(.kind)/\(.metadata.name) \(.metadata.annotations["helm.sh/hook"])'
hooks+=' \(.metadata.annotations["helm.sh/hook-weight"]) \(.metadata.annotations["helm.sh/hook-delete-policy"])"] | sort'
check_json "hooks, weights and delete policies" cm "$hooks" '[
  "ConfigMap/myapp-rollgate-config pre-install,pre-upgrade -5 before-hook-creation",
  "ConfigMap/myapp-rollgate-migrations pre-install,pre-upgrade -5 before-hook-creation",
  "CronJob/myapp-rollgate-rollback null null null",
  "Job/myapp-rollgate-migrate pre-install,pre-upgrade 0 before-hook-creation",
  "Role/myapp-rollgate pre-install,pre-upgrade -10 before-hook-creation",
  "RoleBinding/myapp-rollgate pre-install,pre-upgrade -10 before-hook-creation",
  "ServiceAccount/myapp-rollgate pre-install,pre-upgrade -10 before-hook-creation"]'

labels='[docs[], cron.spec.jobTemplate, cron.spec.jobTemplate.spec.template, job.spec.template
  | .metadata.labels | with_entries(select(.key | IN("app.kubernetes.io/name",
    "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
    "helm.sh/chart")))] | unique'
check_json "standard labels on every object and pod" cm "$labels" '[{
  "app.kubernetes.io/name": "rollgate", "app.kubernetes.io/instance": "myapp",
  "app.kubernetes.io/version": "0.1.0", "app.kubernetes.io/managed-by": "Helm",
  "helm.sh/chart": "rollgate-0.1.0"}]'

check_json "fullnameOverride names every object" override \
    '[docs[] | .metadata.name] | unique' \
    '["db-migrations", "db-migrations-config", "db-migrations-migrate", "db-migrations-rollback"]'

# ---------------------------------------------------------------- RBAC

check_json "Role rules are exactly the least-privilege set" def 'named("Role"; "myapp-rollgate").rules' '[
  {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
  {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]'
check_json "with the post-deploy Job, the Role may also get that one Deployment" post \
    'named("Role"; "myapp-rollgate").rules' '[
  {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
  {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
  {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"], "verbs": ["get"]}]'
check_json "RoleBinding binds the ServiceAccount to the Role" def \
    'named("RoleBinding"; "myapp-rollgate") | {roleRef, subjects}' '{
  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "myapp-rollgate"},
  "subjects": [{"kind": "ServiceAccount", "name": "myapp-rollgate", "namespace": "ns1"}]}'

# ---------------------------------------------------------------- the post-deploy Job

postjob='named("Job"; "myapp-rollgate-post-migrate")'
for r in def noauto postnoauto; do
    check_json "no post-deploy Job unless enabled with autoMigrate ($r)" "$r" "[$postjob] | length" 0
done
check_json "the post-deploy Job is a post-install/post-upgrade hook waiting for the rollout" post \
    "$postjob"' | {h: .metadata.annotations, c: (.spec.template.spec.containers[0] | {name, args}),
      sa: .spec.template.spec.serviceAccountName}' '{
  "h": {"helm.sh/hook": "post-install,post-upgrade", "helm.sh/hook-weight": "0",
        "helm.sh/hook-delete-policy": "before-hook-creation"},
  "c": {"name": "post-migrate", "args": ["migrate", "--phase", "post", "--after-rollout", "deployment/web"]},
  "sa": "myapp-rollgate"}'
check_true "the post-deploy Job pod meets Pod Security restricted" post "$postjob | .spec.template.spec | restricted"

# ---------------------------------------------------------------- the migrate Job

check_json "Job spec defaults" def 'job.spec | {backoffLimit, activeDeadlineSeconds, ttlSecondsAfterFinished}' \
    '{"backoffLimit": 2, "activeDeadlineSeconds": 900, "ttlSecondsAfterFinished": 86400}'
check_json "Job spec from values, ttl null omitted" nottl \
    'job.spec | {backoffLimit, activeDeadlineSeconds, ttl: has("ttlSecondsAfterFinished")}' \
    '{"backoffLimit": 0, "activeDeadlineSeconds": 60, "ttl": false}'
check_json "Job pod" def 'jobpod | {restartPolicy, serviceAccountName, automountServiceAccountToken,
    n: (.containers | length), c: (.containers[0] | {name, image, imagePullPolicy, args,
    terminationMessagePolicy, resources})}' '{
  "restartPolicy": "Never", "serviceAccountName": "myapp-rollgate",
  "automountServiceAccountToken": true, "n": 1,
  "c": {"name": "migrate", "image": "ghcr.io/rollgate/rollgate:0.1.0",
        "imagePullPolicy": "IfNotPresent", "args": ["migrate", "--phase", "pre"],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}}}'
check_json "pod security context" def 'jobpod.securityContext' \
    '{"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}}'
check_json "container security context" def 'jobpod.containers[0].securityContext' \
    '{"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}'
check_true "Job pod meets Pod Security restricted" cm 'jobpod | restricted'
check_true "CronJob pod meets Pod Security restricted" cm 'cronpod | restricted'
check_json "the restricted check can fail" cm \
    'jobpod | .containers[0].securityContext.allowPrivilegeEscalation = true | restricted' false

check_json "env: database URL from the Secret, POD_NAME, config path" def \
    'jobpod | envmap | {ROLLGATE_DATABASE_URL, POD_NAME, ROLLGATE_CONFIG}' '{
  "ROLLGATE_DATABASE_URL": {"secretKeyRef": {"name": "rollgate-database", "key": "url"}},
  "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
  "ROLLGATE_CONFIG": "/etc/rollgate/config.yaml"}'
check_json "env: database Secret name and key from values" secret \
    '[jobpod, cronpod | envmap.ROLLGATE_DATABASE_URL] | unique' \
    '[{"secretKeyRef": {"name": "app-db", "key": "dsn"}}]'
check_json "env: no direct URL unless its key is given" def \
    '[jobpod, cronpod | envmap | has("ROLLGATE_DATABASE_DIRECT_URL")] | unique' '[false]'
check_json "env: the direct URL from the same Secret" direct \
    '[jobpod, cronpod | envmap.ROLLGATE_DATABASE_DIRECT_URL] | unique' \
    '[{"secretKeyRef": {"name": "app-db", "key": "direct"}}]'
check_json "config mounted read-only at /etc/rollgate, no /migrations with source image" def \
    'jobpod | {m: mountmap, v: volmap}' '{
  "m": {"/etc/rollgate": {"name": "rollgate-config", "mountPath": "/etc/rollgate", "readOnly": true}},
  "v": {"rollgate-config": {"name": "rollgate-config", "configMap": {"name": "myapp-rollgate-config"}}}}'

check_json "image: tag from values" tag '[jobpod, cronpod | .containers[0].image] | unique' \
    '["ghcr.io/rollgate/rollgate:1.2.3"]'
check_json "image: digest wins over the tag" digest '[jobpod, cronpod | .containers[0].image] | unique' \
    "[\"ghcr.io/rollgate/rollgate@$digest\"]"

check_json "passthrough: extraEnv, scheduling, annotations, pull secrets, resources" extras \
    '[jobpod, cronpod | {e: envmap.ROLLGATE_DATABASE_LOCK_RETRIES, nodeSelector, tolerations,
      affinity, imagePullSecrets, r: .containers[0].resources}] | unique | length' 1
check_json "passthrough values arrive" extras \
    'jobpod | {e: envmap.ROLLGATE_DATABASE_LOCK_RETRIES, nodeSelector, t: .tolerations[0].key,
      a: (.affinity.nodeAffinity | keys), imagePullSecrets, r: .containers[0].resources}' '{
  "e": "9", "nodeSelector": {"disktype": "ssd"}, "t": "dedicated",
  "a": ["requiredDuringSchedulingIgnoredDuringExecution"], "imagePullSecrets": [{"name": "regcred"}],
  "r": {"requests": {"cpu": "100m", "memory": "48Mi"}, "limits": {"memory": "96Mi"}}}'
check_json "hostNetwork off by default" def '[jobpod, cronpod | has("hostNetwork")]' '[false, false]'
check_json "hostNetwork true reaches the Job's and the CronJob's pods" hostnet \
    '[jobpod, cronpod | .hostNetwork]' '[true, true]'
check_json "podAnnotations on the pods only" extras \
    '[job, cron | .metadata.annotations["example.com/team"]], [job.spec.template, cron.spec.jobTemplate.spec.template
      | .metadata.annotations["example.com/team"]]' '[null, null] ["db", "db"]'

# ---------------------------------------------------------------- podFailurePolicy by version

pfp='{"rules": [
  {"action": "FailJob", "onExitCodes": {"containerName": "migrate", "operator": "In", "values": [1, 2, 3, 4, 5, 6, 10]}},
  {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}'
for r in k126 k131 def; do
    check_json "podFailurePolicy on $r" "$r" 'job.spec.podFailurePolicy' "$pfp"
done
# 12 (a lock not acquired) is retryable: the blocker may be gone by the next attempt.
check_json "exit 12 is retried, not FailJob" k126 \
    '[job, cron.spec.jobTemplate | .spec.podFailurePolicy.rules[0].onExitCodes.values | any(. == 12)]' \
    '[false, false]'
check_json "rollback's podFailurePolicy names its container" k126 \
    'cron.spec.jobTemplate.spec.podFailurePolicy.rules[0].onExitCodes.containerName' '"rollback"'
for r in k120 k125 k131nopfp; do
    check_json "no podFailurePolicy on $r" "$r" \
        '[job.spec, cron.spec.jobTemplate.spec | has("podFailurePolicy")]' '[false, false]'
done
check_grep "the template says retryable codes count against backoffLimit" \
    '7 database, 8 lease or timeout, 9 API unavailable, 128\+N' "$chart/templates/_helpers.tpl"

check_json "CronJob batch/v1beta1 below 1.21" k120 'cron.apiVersion' '"batch/v1beta1"'
for r in k125 k131; do
    check_json "CronJob batch/v1 on $r" "$r" 'cron.apiVersion' '"batch/v1"'
done

# ---------------------------------------------------------------- config.yaml

check_eq "config.yaml defaults" "$(config_of def)" "$(jq -c -S . <<<'{
  "migrations": {"dir": "/migrations", "autoMigrate": true, "target": "latest", "onNewerSchema": "warn"},
  "lease": {"mode": "kubernetes", "name": "myapp-rollgate", "duration": "15s", "renewDeadline": "10s",
            "retryPeriod": "2s", "waitTimeout": "10m"},
  "log": {"format": "json", "level": "info"},
  "timeout": "0",
  "database": {"connectTimeout": "10s", "connectRetry": "60s", "lockTimeout": "5s", "statementTimeout": "0"}}')"
check_json "config.yaml quotes every duration" def \
    '[config | split("\n")[] | select(test("^ *(duration|renewDeadline|retryPeriod|waitTimeout|timeout|connectTimeout|connectRetry|lockTimeout|statementTimeout): "))
      | test(": \"[0-9hms]+\"$")]' '[true, true, true, true, true, true, true, true, true]'
check_eq "config.yaml target from --set" "$(config_of target | jq -c .migrations.target)" '"42"'
check_eq "config.yaml timestamp target from a values file" "$(config_of ts | jq -c .migrations.target)" '"20240101120000"'
check_eq "config.yaml autoMigrate false" "$(config_of noauto | jq -c .migrations.autoMigrate)" false

# ---------------------------------------------------------------- autoMigrate off

check_json "autoMigrate false: no Job, the rest stays" noauto '[docs[] | "\(.kind)/\(.metadata.name)"] | sort' '[
  "ConfigMap/myapp-rollgate-config", "CronJob/myapp-rollgate-rollback", "Role/myapp-rollgate",
  "RoleBinding/myapp-rollgate", "ServiceAccount/myapp-rollgate"]'
check_json "rollback.enabled false: no CronJob" norollback '[kind("CronJob")] | length' 0
check_json "autoMigrate false: ROLLGATE_AUTO_MIGRATE=false in the pods' env, the CronJob's long name wins" \
    noauto 'cronpod | envmap | {ROLLGATE_AUTO_MIGRATE, ROLLGATE_MIGRATIONS_AUTO_MIGRATE}' \
    '{"ROLLGATE_AUTO_MIGRATE": "false", "ROLLGATE_MIGRATIONS_AUTO_MIGRATE": "true"}'
check_json "autoMigrate true: no ROLLGATE_AUTO_MIGRATE in the env" def 'jobpod | envmap | has("ROLLGATE_AUTO_MIGRATE")' false

# ---------------------------------------------------------------- migrations from a ConfigMap

check_eq "migrations ConfigMap holds both files, byte for byte" \
    "$(q cm 'named("ConfigMap"; "myapp-rollgate-migrations").data')" \
    "$(yq -c -S '.migrations.files' "$work/cm.values.yaml")"
check_json "migrations ConfigMap mounted read-only at /migrations in Job and CronJob" cm \
    '[jobpod, cronpod | {m: mountmap["/migrations"], v: volmap[mountmap["/migrations"].name]}] | unique' '[{
  "m": {"name": "rollgate-migrations", "mountPath": "/migrations", "readOnly": true},
  "v": {"name": "rollgate-migrations", "configMap": {"name": "myapp-rollgate-migrations"}}}]'
check_json "no migrations ConfigMap with source image" def '[named("ConfigMap"; "myapp-rollgate-migrations")] | length' 0

# ---------------------------------------------------------------- the rollback CronJob

check_json "CronJob: suspended, never scheduled, not a hook" def \
    'cron | {suspend: .spec.suspend, schedule: .spec.schedule, a: .metadata.annotations}' \
    '{"suspend": true, "schedule": "0 0 31 2 *", "a": null}'
check_json "CronJob container: rollback, migrate, empty target, auto-migrate forced on" def \
    'cronpod | {name: .containers[0].name, args: .containers[0].args, t: envmap.ROLLGATE_MIGRATIONS_TARGET,
      a: envmap.ROLLGATE_MIGRATIONS_AUTO_MIGRATE}' \
    '{"name": "rollback", "args": ["migrate"], "t": "", "a": "true"}'
check_json "CronJob target from values" target 'cronpod | envmap.ROLLGATE_MIGRATIONS_TARGET' '"7"'
check_json "CronJob timestamp target from a values file" ts 'cronpod | envmap.ROLLGATE_MIGRATIONS_TARGET' '"20231231235959"'
same='def strip: .containers[0] |= (del(.name) | del(.args)
      | .env |= map(select(.name | IN("ROLLGATE_MIGRATIONS_TARGET", "ROLLGATE_MIGRATIONS_AUTO_MIGRATE") | not)));
    def stripmeta: .metadata.labels |= del(."app.kubernetes.io/component");'
for r in def cm extras k126; do
    check_json "CronJob pod is the Job pod but for name, args and target ($r)" "$r" \
        "$same [(job.spec.template | stripmeta | .spec |= strip), (cron.spec.jobTemplate.spec.template | stripmeta | .spec |= strip)] | unique | length" 1
done

# ---------------------------------------------------------------- NOTES.txt

# helm template does not render NOTES.txt: render it as a value of a scratch copy's template.
cp -r "$chart" "$work/notes-chart"
{
    echo '{{- define "test.notes" }}'
    cat "$chart/templates/NOTES.txt"
    echo '{{- end }}'
    echo 'notes: {{ include "test.notes" . | quote }}'
} >"$work/notes-chart/templates/test-notes.yaml"
notes() {
    local name=$1
    shift
    helm template myapp "$work/notes-chart" --namespace "$ns" "$@" --show-only templates/test-notes.yaml 2>&1 |
        yq -r .notes >"$work/notes-$name.txt"
}
notes def
notes noauto --set migrations.autoMigrate=false
check_grep "NOTES: the wait init container" 'args: \["wait"\]' "$work/notes-def.txt"
check_grep "NOTES: the migrate init container runs as the chart's ServiceAccount" \
    'serviceAccountName: myapp-rollgate$' "$work/notes-def.txt"
check_grep "NOTES: rollback set env" 'kubectl -n ns1 set env cronjob/myapp-rollgate-rollback ROLLGATE_MIGRATIONS_TARGET=<version>' "$work/notes-def.txt"
check_grep "NOTES: rollback create job" 'kubectl -n ns1 create job --from=cronjob/myapp-rollgate-rollback myapp-rollback-<version>' "$work/notes-def.txt"
check_grep "NOTES: hook objects deleted by label" 'delete .*-l app.kubernetes.io/instance=myapp' "$work/notes-def.txt"
check_grep "NOTES: autoMigrate off explained" 'ROLLGATE_AUTO_MIGRATE=false' "$work/notes-noauto.txt"
sed -n '/^      serviceAccountName:/,/^$/p' "$work/notes-noauto.txt" >"$work/migrate.yaml"
check_json "NOTES: the migrate snippet parses and, with autoMigrate off, keeps it off" \
    migrate '.[0] | {sa: .serviceAccountName, args: .initContainers[0].args,
      a: [.initContainers[0].env[] | select(.name | test("AUTO_MIGRATE")) | "\(.name)=\(.value)"]}' '{
  "sa": "myapp-rollgate", "args": ["migrate", "--phase", "pre"], "a": ["ROLLGATE_AUTO_MIGRATE=false"]}'
# The snippets must be the pod spec they claim to be: cut them out and parse them.
sed -n '/^      initContainers:/,/^$/p' "$work/notes-def.txt" | awk 'BEGIN{RS=""} NR==1' >"$work/wait.yaml"
check_json "NOTES: the wait snippet parses, with the chart's env and lease mode none" \
    wait '.[0].initContainers[0] | {args, e: ([.env[].name]), m: [.volumeMounts[].mountPath]}' '{
  "args": ["wait"],
  "e": ["ROLLGATE_DATABASE_URL", "POD_NAME", "POD_NAMESPACE", "ROLLGATE_CONFIG", "ROLLGATE_LEASE_MODE"],
  "m": ["/etc/rollgate"]}'

# ---------------------------------------------------------------- documentation

# Every value: the keys of the groups, and the other top-level keys.
groups='"image", "database", "migrations", "lease", "log", "job", "rollback"'
values=$(yq -r "to_entries[] | if (.key | IN($groups)) then .key as \$k | .value | keys[] | \"\\(\$k).\\(.)\" else .key end" \
    "$chart/values.yaml")
for v in $values; do
    check_grep "chart README documents $v" "\`$v\`" "$chart/README.md"
done
# The value paths (as above) whose line in values.yaml does not follow a comment line.
uncommented=$(awk '
    /^[A-Za-z]/ { top = $1; sub(":.*", "", top); path = top }
    /^  [A-Za-z]/ { k = $1; sub(":.*", "", k); path = top "." k }
    /^(  )?[A-Za-z]/ { if (prev !~ /^ *#/) print path }
    { prev = $0 }' "$chart/values.yaml" | grep -Fxf <(echo "$values"))
check_eq "values.yaml comments every value" "$uncommented" ""
check_grep "chart README: install command" 'helm install myapp charts/rollgate --set database.existingSecret=' "$chart/README.md"
check_grep "chart README: delete hook objects by label" 'app.kubernetes.io/instance=myapp' "$chart/README.md"

# ---------------------------------------------------------------- TLS to PostgreSQL

# The CA from a Secret or a ConfigMap: mounted read-only and named by PGSSLROOTCERT in the
# migrate Job's and the rollback CronJob's container; nothing of it without one.
render tlssecret --set database.tls.caSecret=pg-ca
render tlscm --set database.tls.caConfigMap=pg-ca --set database.tls.caKey=root.pem
for r in tlssecret tlscm; do
    for pod in jobpod cronpod; do
        check_json "$r: $pod mounts the CA read-only" "$r" \
            "$pod | mountmap[\"/var/run/rollgate/tls\"] | {name, readOnly}" \
            '{"name": "rollgate-tls-ca", "readOnly": true}'
        check_json "$r: $pod sets PGSSLROOTCERT to it" "$r" "$pod | envmap.PGSSLROOTCERT" \
            '"/var/run/rollgate/tls/ca.crt"'
    done
done
check_json "tlssecret: the volume is the Secret's key as ca.crt" tlssecret \
    'jobpod | volmap["rollgate-tls-ca"] | del(.name)' \
    '{"secret": {"secretName": "pg-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}'
check_json "tlscm: the volume is the ConfigMap's key as ca.crt" tlscm \
    'cronpod | volmap["rollgate-tls-ca"] | del(.name)' \
    '{"configMap": {"name": "pg-ca", "items": [{"key": "root.pem", "path": "ca.crt"}]}}'
check_json "no CA: no PGSSLROOTCERT, mount or volume" def \
    '[jobpod, cronpod] | map(envmap.PGSSLROOTCERT, mountmap["/var/run/rollgate/tls"],
      volmap["rollgate-tls-ca"]) | unique' '[null]'
only=template check_rejects "both a CA Secret and a CA ConfigMap" 'set caSecret or caConfigMap, not both' \
    --set database.tls.caSecret=a --set database.tls.caConfigMap=b
check_rejects "a CA Secret name Kubernetes refuses" 'database\.tls\.caSecret' \
    --set database.tls.caSecret=Bad_Name

# ---------------------------------------------------------------- rollgate reads what we render

# rollgate itself reads the rendered config.yaml.
mkdir -p "$work/mig"
printf 'CREATE TABLE t (id int);\n' >"$work/mig/0001_t.up.sql"
for r in def noauto target ts; do
    q "$r" config | jq -r . >"$work/$r.config.yaml"
done
rg() {
    local cfg=$1
    shift
    env ROLLGATE_CONFIG="$work/$cfg.config.yaml" ROLLGATE_MIGRATIONS_DIR="$work/mig" \
        ROLLGATE_LEASE_MODE=none ROLLGATE_DATABASE_CONNECT_RETRY=0 \
        ROLLGATE_DATABASE_URL=postgres://u@127.0.0.1:1/db "$@"
}
for r in def target ts; do
    check_rc 0 "rollgate accepts config.yaml of $r" rg "$r" "$RG_STATIC_BIN" validate
done
check_rc 0 "autoMigrate false: migrate exits 0 without a database" rg noauto "$RG_STATIC_BIN" migrate
check_rc 3 "the rollback CronJob's empty target exits 3" \
    rg def ROLLGATE_MIGRATIONS_TARGET= ROLLGATE_MIGRATIONS_AUTO_MIGRATE=true "$RG_STATIC_BIN" migrate

t_done
