#!/usr/bin/env bash
# charts/rollgate on the real kube-apiserver (1.20): the rendering helm makes for that version is
# accepted (server dry run, then for real); rollgate, run as the stored Job's pod would run it
# (the chart's ServiceAccount token, ConfigMaps, Secret and env), takes the Lease and migrates
# with exactly the chart's RBAC; without any one of the Role's verbs it exits 10 having changed
# nothing; the suspended rollback CronJob refuses to run without a target and rolls back with one.
# Needs RG_STATIC_BIN, RG_TEST_PG_URL, RG_TEST_KUBE_DIR, RG_TOOLS, RG_KUBECTL (see lib.sh).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
. "$here/pod.sh"
. "$here/cluster.sh"

ns=chart-test-$$
release=app
full=$release-rollgate

cluster_namespace "$ns"
cluster_migrations "$t_scratch/migrations"
db=$(cluster_database)
cluster_secret "$ns" app-db "$db"

# Migrations from a ConfigMap, so the stored objects carry everything the pod needs.
jq -n --arg dir "$t_scratch/migrations" '{database: {existingSecret: "app-db"},
    migrations: {source: "configMap", files: {}}}' >"$t_scratch/values.json"
for f in "$t_scratch"/migrations/*.sql; do
    jq --arg k "$(basename "$f")" --rawfile v "$f" '.migrations.files[$k] = $v' \
        "$t_scratch/values.json" >"$t_scratch/v.tmp" && mv "$t_scratch/v.tmp" "$t_scratch/values.json"
done

render() {
    helm template "$release" "$RG_REPO/charts/rollgate" --namespace "$ns" --kube-version 1.20.2 \
        -f "$t_scratch/values.json" "$@"
}
check "helm template for Kubernetes 1.20.2" render --output-dir "$t_scratch/unused"
render >"$t_scratch/chart.yaml" 2>/dev/null
check "the API server accepts the rendering (apply --dry-run=server)" \
    kubectl_admin -n "$ns" apply --dry-run=server -f "$t_scratch/chart.yaml"
check "apply for real" kubectl_admin -n "$ns" apply -f "$t_scratch/chart.yaml"
for obj in serviceaccount/$full role/$full rolebinding/$full configmap/$full-config \
    configmap/$full-migrations job/$full-migrate cronjob/$full-rollback; do
    check "stored: $obj" kubectl_admin -n "$ns" get "$obj"
done

job_spec() { kubectl_admin -n "$ns" get job "$full-migrate" -o json | jq -c .spec.template.spec; }
spec=$(job_spec)
check_eq "the stored Job's pod runs as the chart's ServiceAccount" \
    "$(jq -r .serviceAccountName <<<"$spec")" "$full"

before=$(cluster_sa_requests "$ns" "$full")
check_rc 0 "the Job's pod migrates" pod_run "$ns" "$full-migrate-a1b2c" "$spec" migrate
check_eq "both migrations are applied" "$(cluster_versions "$db")" "1,2"
check_eq "the ConfigMap carried the file byte for byte (same checksum)" \
    "$(cluster_psql "$db" -c "SELECT checksum FROM rollgate_migrations WHERE version = 1")" \
    "$(sha256sum <"$t_scratch/migrations/0001_accounts.up.sql" | cut -d' ' -f1)"
check "the ServiceAccount made the Lease requests" test "$(cluster_sa_requests "$ns" "$full")" -gt "$before"
check_eq "none of its requests was refused" "$(cluster_sa_refused "$ns" "$full")" 0
check_eq "the Lease (named by the chart) was released" \
    "$(kubectl_admin -n "$ns" get lease "$full" -o json | jq -r '.spec.holderIdentity // ""')" ""

cluster_rbac_verbs "$ns" "$full" "$full" app-db "$full-migrate" "$spec" migrate
fresh=$(cluster_database)
cluster_secret "$ns" app-db "$fresh"
check_rc 0 "the Job's pod migrates a fresh database" pod_run "$ns" "$full-migrate-b" "$spec" migrate

# The rollback CronJob (batch/v1beta1 on 1.20): suspended, refuses an unset target.
cron=$(kubectl_admin -n "$ns" get cronjob "$full-rollback" -o json)
check_eq "the rollback CronJob is suspended" "$(jq -r .spec.suspend <<<"$cron")" true
cspec=$(jq -c .spec.jobTemplate.spec.template.spec <<<"$cron")
check_rc 3 "the rollback Job without a target exits 3" \
    pod_run "$ns" "$full-rollback-x" "$cspec" rollback
check_eq "and changed nothing" "$(cluster_versions "$fresh")" "1,2"
check "kubectl set env gives the CronJob its target" \
    kubectl_admin -n "$ns" set env "cronjob/$full-rollback" -c rollback ROLLGATE_MIGRATIONS_TARGET=1
cspec=$(kubectl_admin -n "$ns" get cronjob "$full-rollback" -o json | jq -c .spec.jobTemplate.spec.template.spec)
check_rc 0 "the rollback Job rolls back to version 1" \
    pod_run "$ns" "$full-rollback-1" "$cspec" rollback
check_eq "the database is at version 1" "$(cluster_versions "$fresh")" "1"

# autoMigrate off: no hook Job; the rollback CronJob still migrates when run by hand.
render --set migrations.autoMigrate=false >"$t_scratch/off.yaml" 2>/dev/null
check_eq "autoMigrate=false renders no Job" "$(yq -r 'select(.kind == "Job") | .metadata.name' "$t_scratch/off.yaml")" ""
check "autoMigrate=false: the API server accepts the rendering" \
    kubectl_admin -n "$ns" apply -f "$t_scratch/off.yaml"
cspec=$(kubectl_admin -n "$ns" get cronjob "$full-rollback" -o json | jq -c .spec.jobTemplate.spec.template.spec)
fresh=$(cluster_database)
cluster_secret "$ns" app-db "$fresh"
cspec=$(jq -c '(.containers[] | select(.name == "rollback") | .env) |=
    map(if .name == "ROLLGATE_MIGRATIONS_TARGET" then .value = "latest" else . end)' <<<"$cspec")
# The release's env without the CronJob's own two entries is what the NOTES' migrate init
# container has: it must not migrate.
initc=$(jq -c '(.containers[] | select(.name == "rollback") | .env) |=
    map(select(.name | IN("ROLLGATE_MIGRATIONS_TARGET", "ROLLGATE_MIGRATIONS_AUTO_MIGRATE") | not))' <<<"$cspec")
check_rc 0 "autoMigrate=false: a migrate init container with the release's env exits 0" \
    pod_run "$ns" app-init-x "$initc" rollback
check_eq "without touching the database" "$(cluster_versions "$fresh")" ""
check_rc 0 "autoMigrate=false: a hand-run rollback Job still migrates" \
    pod_run "$ns" "$full-rollback-2" "$cspec" rollback
check_eq "to the target it was given" "$(cluster_versions "$fresh")" "1,2"

# The default rendering (migrations in the image), in a namespace of its own: a Job's pod
# template cannot change once stored.
cluster_namespace "$ns-image"
check "the default values' rendering passes the server dry run" \
    bash -c "'$RG_TOOLS/helm' template '$release' '$RG_REPO/charts/rollgate' --namespace '$ns-image' \
        --kube-version 1.20.2 | '$RG_KUBECTL' --kubeconfig '$RG_TEST_KUBE_DIR/admin.kubeconfig' \
        -n '$ns-image' apply --dry-run=server -f -"

cluster_cleanup
t_done
