#!/usr/bin/env bash
# manifests/ on the real kube-apiserver (1.20, so manifests/base: podFailurePolicy needs 1.26):
# the API server accepts `kubectl kustomize` output (server dry run, then for real), and applying
# it stores no rollback Job; rollgate, run as each stored pod template would run it, migrates
# from the Job with exactly the manifests' RBAC (exit 10 without any one verb), waits in the
# app-wait init container without any token, migrates in the app-migrate init container; the
# rollback Job of manifests/rollback, applied alone as shipped, exits 3 and changes nothing, and
# the README's rollback overlay (without the podFailurePolicy component, as before 1.26) rolls
# back. Needs RG_STATIC_BIN, RG_TEST_PG_URL, RG_TEST_KUBE_DIR, RG_TOOLS, RG_KUBECTL.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
. "$here/pod.sh"
. "$here/cluster.sh"

ns=manifests-test-$$
cluster_namespace "$ns"
cluster_migrations "$t_scratch/migrations"
export POD_MIGRATIONS=$t_scratch/migrations # the image's /migrations
db=$(cluster_database)
cluster_secret "$ns" rollgate-database "$db"

cp -r "$RG_REPO/manifests" "$t_scratch/manifests"
check "kubectl kustomize manifests/base" kubectl132 kustomize "$t_scratch/manifests/base"
kubectl132 kustomize "$t_scratch/manifests/base" >"$t_scratch/base.yaml" 2>/dev/null
check "the API server accepts the rendering (apply --dry-run=server)" \
    kubectl_admin -n "$ns" apply --dry-run=server -f "$t_scratch/base.yaml"
check "apply for real" kubectl_admin -n "$ns" apply -f "$t_scratch/base.yaml"
check_eq "the only Job stored is rollgate-migrate: no rollback Job" \
    "$(kubectl_admin -n "$ns" get jobs -o name 2>&1)" "job.batch/rollgate-migrate"

template() { kubectl_admin -n "$ns" get "$1" -o json | jq -c .spec.template.spec; }
spec=$(template job/rollgate-migrate)
before=$(cluster_sa_requests "$ns" rollgate)
check_rc 0 "the migrate Job's pod migrates" pod_run "$ns" rollgate-migrate-a1b2c "$spec" migrate
check_eq "both migrations are applied" "$(cluster_versions "$db")" "1,2"
check "the ServiceAccount made the Lease requests" test "$(cluster_sa_requests "$ns" rollgate)" -gt "$before"
check_eq "none of its requests was refused" "$(cluster_sa_refused "$ns" rollgate)" 0
cluster_rbac_verbs "$ns" rollgate rollgate rollgate-database rollgate-migrate "$spec" migrate

# app-wait: the init container waits on the database alone, with no token mounted.
db=$(cluster_database)
cluster_secret "$ns" rollgate-database "$db"
wspec=$(template deployment/app-wait)
check_eq "app-wait mounts no ServiceAccount token" "$(jq -r .automountServiceAccountToken <<<"$wspec")" false
short=$(jq -c '(.initContainers[] | select(.name == "rollgate") | .args) += ["--timeout", "1s"]' <<<"$wspec")
check_rc 8 "rollgate wait times out (exit 8) while migrations are pending" \
    pod_run "$ns" app-wait-x "$short" rollgate
check_eq "wait never writes" "$(cluster_versions "$db")" ""
check_rc 0 "the migrate Job's pod migrates the new database" pod_run "$ns" rollgate-migrate-b "$spec" migrate
check_rc 0 "then rollgate wait exits 0" pod_run "$ns" app-wait-y "$wspec" rollgate

# app-migrate: the init container migrates, with the rollgate ServiceAccount.
db=$(cluster_database)
cluster_secret "$ns" rollgate-database "$db"
check_rc 0 "the app-migrate init container migrates" \
    pod_run "$ns" app-migrate-x "$(template deployment/app-migrate)" rollgate
check_eq "and the database is at version 2" "$(cluster_versions "$db")" "1,2"

# rollback_apply FILE: applies only the rollback Job of the rendering FILE, as the README does
# with -l; prints what kubectl applied.
rollback_apply() {
    kubectl_admin -n "$ns" apply -l app.kubernetes.io/component=rollback -f "$1" -o name
}

# The rollback Job of manifests/rollback as shipped has no target: exit 3, nothing changed.
check "kubectl kustomize manifests/rollback" kubectl132 kustomize "$t_scratch/manifests/rollback"
kubectl132 kustomize "$t_scratch/manifests/rollback" >"$t_scratch/rollback.yaml" 2>/dev/null
check_eq "manifests/rollback with -l applies the rollback Job alone" \
    "$(rollback_apply "$t_scratch/rollback.yaml" 2>&1)" "job.batch/rollgate-rollback"
rspec=$(template job/rollgate-rollback)
check "the rollback Job's ConfigMap is the one base applied" \
    kubectl_admin -n "$ns" get configmap "$(jq -r '.volumes[0].configMap.name' <<<"$rspec")"
check_rc 3 "the shipped rollback Job exits 3" pod_run "$ns" rollgate-rollback-x "$rspec" rollback
check_grep "because its target is empty (termination message)" \
    'ROLLGATE_MIGRATIONS_TARGET: invalid target ""' "$t_scratch/termination-log"
check_eq "and changed nothing" "$(cluster_versions "$db")" "1,2"

# The README's overlay gives it a target (1 here), in this namespace, without the component
# (this API server is 1.20); the old Job is replaced, as the README says.
mkdir -p "$t_scratch/rollback"
sed -n '/<!-- rollback-overlay/,/^```$/p' "$RG_REPO/manifests/README.md" | sed '1,2d;$d' |
    sed -e '/components\/pod-failure-policy/d' -e "s|^namespace: myapp\b.*|namespace: $ns|" \
        -e 's|value: "3"|value: "1"|' >"$t_scratch/rollback/kustomization.yaml"
check_grep "the README's rollback overlay sets the target" 'ROLLGATE_MIGRATIONS_TARGET' \
    "$t_scratch/rollback/kustomization.yaml"
check_grep "the README's rollback overlay is on manifests/rollback" '^  - \.\./manifests/rollback\b' \
    "$t_scratch/rollback/kustomization.yaml"
check_grep "its namespace is the test's" "^namespace: $ns\$" "$t_scratch/rollback/kustomization.yaml"
check "kubectl kustomize the README's rollback overlay" kubectl132 kustomize "$t_scratch/rollback"
kubectl132 kustomize "$t_scratch/rollback" >"$t_scratch/overlay.yaml" 2>/dev/null
out=$(rollback_apply "$t_scratch/overlay.yaml" 2>&1) && rc=0 || rc=$?
check_eq "apply refuses to change the old rollback Job (field is immutable)" \
    "$rc $(grep -q 'field is immutable' <<<"$out" && echo immutable)" "1 immutable"
check "the old rollback Job is deleted" kubectl_admin -n "$ns" delete job rollgate-rollback
check_eq "the overlay with -l applies the rollback Job alone" \
    "$(rollback_apply "$t_scratch/overlay.yaml" 2>&1)" "job.batch/rollgate-rollback"
check_eq "the stored rollback Job has target 1" \
    "$(template job/rollgate-rollback | jq -c '[.containers[].env[] | select(.name == "ROLLGATE_MIGRATIONS_TARGET") | .value]')" \
    '["1"]'
check_rc 0 "the rollback Job rolls back to version 1" \
    pod_run "$ns" rollgate-rollback-y "$(template job/rollgate-rollback)" rollback
check_eq "the database is at version 1" "$(cluster_versions "$db")" "1"

cluster_cleanup
t_done
