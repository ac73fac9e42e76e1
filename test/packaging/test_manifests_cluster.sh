#!/usr/bin/env bash
# manifests/ on the real kube-apiserver (1.20, so manifests/base: podFailurePolicy needs 1.26):
# the API server accepts `kubectl kustomize` output (server dry run, then for real); rollgate,
# run as each stored pod template would run it, migrates from the Job with exactly the
# manifests' RBAC (exit 10 without any one verb), waits in the app-wait init container without
# any token, migrates in the app-migrate init container, and rolls back through the README's
# overlay. Needs RG_STATIC_BIN, RG_TEST_PG_URL, RG_TEST_KUBE_DIR, RG_TOOLS, RG_KUBECTL.
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

# The rollback Job as shipped has no target: exit 3, nothing changed.
check_rc 3 "the shipped rollback Job exits 3" \
    pod_run "$ns" rollgate-rollback-x "$(template job/rollgate-rollback)" rollback
check_eq "and changed nothing" "$(cluster_versions "$db")" "1,2"

# The README's overlay gives it a target; the old Job is replaced, as the README says.
mkdir -p "$t_scratch/rollback"
sed -n '/<!-- rollback-overlay/,/^```$/p' "$RG_REPO/manifests/README.md" | sed '1,2d;$d' |
    sed -e 's|\.\./deploy|../manifests/base|' -e 's|value: "3"|value: "1"|' \
        >"$t_scratch/rollback/kustomization.yaml"
check_grep "the README's rollback overlay sets the target" 'ROLLGATE_MIGRATIONS_TARGET' \
    "$t_scratch/rollback/kustomization.yaml"
kubectl_admin -n "$ns" delete job rollgate-rollback >/dev/null
check "the overlay's rollback Job is accepted" bash -c "'$RG_TOOLS/kubectl' kustomize '$t_scratch/rollback' |
    '$RG_KUBECTL' --kubeconfig '$RG_TEST_KUBE_DIR/admin.kubeconfig' -n '$ns' apply \
        -l app.kubernetes.io/component=rollback -f -"
check_rc 0 "the rollback Job rolls back to version 1" \
    pod_run "$ns" rollgate-rollback-y "$(template job/rollgate-rollback)" rollback
check_eq "the database is at version 1" "$(cluster_versions "$db")" "1"

cluster_cleanup
t_done
