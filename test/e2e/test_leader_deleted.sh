# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# The leader pod force-deleted in the middle of a migration: the kubelet stops it, another pod
# takes the Lease over and finishes; every migration is applied exactly once, by a pod that
# is not the deleted one, and all pods end Ready.
e2e_setup takeover
full=app-rollgate
e2e_migrations "$E2E_WORK/takeover" 1
echo 'SELECT pg_sleep(20); CREATE TABLE orders (id bigint PRIMARY KEY);' >"$E2E_WORK/takeover/0002_slow.up.sql"
echo 'ALTER TABLE orders ADD COLUMN total numeric;' >"$E2E_WORK/takeover/0003_total.up.sql"
e2e_values "$E2E_WORK/takeover" >"$E2E_WORK/takeover.json"
helm template app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/takeover.json" --kube-version 1.20.2 \
    --show-only templates/serviceaccount.yaml --show-only templates/role.yaml \
    --show-only templates/rolebinding.yaml --show-only templates/configmap.yaml \
    --show-only templates/migrations-configmap.yaml >"$E2E_WORK/takeover.yaml" || fail "helm template failed"
k -n "$ns" apply -f "$E2E_WORK/takeover.yaml" >/dev/null || fail "cannot apply the chart's RBAC and ConfigMaps"
wait_until 120 "the ServiceAccount's token" e2e_sa_token "$full"
e2e_deployment api 2 migrate "$full"

sleeping() {
    [ "$(e2e_psql "$db" -c "SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()")" -ge 1 ]
}
wait_until 300 "migration 2 running" sleeping
leader=$(e2e_lease_holder "$full")
k -n "$ns" get pod "$leader" >/dev/null 2>&1 || fail "the Lease holder '$leader' is not a pod"
step "force-deleting the leader $leader"
k -n "$ns" delete pod "$leader" --grace-period=0 --force >&2 || fail "kubectl delete failed"
wait_until 420 "api's 2 pods Ready" e2e_ready app=api 2
expect_eq "versions" "$(e2e_versions)" "1,2,3"
expect_eq "one history row each" \
    "$(e2e_psql "$db" -c "SELECT count(*) FROM rollgate_migrations WHERE kind = 'schema'")" 3
expect_eq "orders has both columns, added once" "$(e2e_columns orders)" "id,total"
by=$(e2e_psql "$db" -c "SELECT applied_by FROM rollgate_migrations WHERE version = 2")
if [ -z "$by" ] || [ "$by" = "$leader" ]; then
    fail "migration 2 applied by '$by', want a pod other than $leader"
fi
echo "   ok: migration 2 applied by $by after $leader was deleted" >&2
if k -n "$ns" get pod "$leader" >/dev/null 2>&1; then
    fail "the deleted pod $leader still exists"
fi
expect_eq "the Lease was released" "$(e2e_lease_holder "$full")" ""
