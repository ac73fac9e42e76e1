# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# The chart's migrate Job with activeDeadlineSeconds, on a migration that runs longer: at the
# deadline the Job controller deletes the pod, the kubelet sends SIGTERM, rollgate cancels the
# statement, rolls its transaction back, releases the Lease and exits 143, which the pod's
# status shows. The test adds a finalizer to the Job's pod template so that the deleted pod's
# last status stays readable: a 1.20 kubelet does not always post it before a deleted pod goes.
e2e_setup deadline
full=app-rollgate
e2e_migrations "$E2E_WORK/deadline" 1
echo 'CREATE TABLE orders (id bigint PRIMARY KEY); SELECT pg_sleep(600);' >"$E2E_WORK/deadline/0002_slow.up.sql"
e2e_values "$E2E_WORK/deadline" | jq '.job.activeDeadlineSeconds = 60' >"$E2E_WORK/deadline.json"
helm template app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/deadline.json" --kube-version 1.20.2 \
    --show-only templates/serviceaccount.yaml --show-only templates/role.yaml \
    --show-only templates/rolebinding.yaml --show-only templates/configmap.yaml \
    --show-only templates/migrations-configmap.yaml >"$E2E_WORK/deadline.yaml" || fail "helm template failed"
helm template app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/deadline.json" --kube-version 1.20.2 \
    --show-only templates/job.yaml | yq -y '.spec.template.metadata.finalizers = ["e2e.rollgate.test/keep"]' \
    >"$E2E_WORK/deadline-job.yaml" || fail "helm template failed"
grep -q 'activeDeadlineSeconds: 60' "$E2E_WORK/deadline-job.yaml" || fail "the Job has no activeDeadlineSeconds 60"
k -n "$ns" apply -f "$E2E_WORK/deadline.yaml" >/dev/null || fail "cannot apply the chart's RBAC and ConfigMaps"
wait_until 120 "the ServiceAccount's token" e2e_sa_token "$full"
k -n "$ns" apply -f "$E2E_WORK/deadline-job.yaml" >/dev/null || fail "cannot apply the chart's Job"

sleeping() {
    [ "$(e2e_psql "$db" -c "SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()")" -ge 1 ]
}
wait_until 120 "migration 2 running (pg_sleep in pg_stat_activity)" sleeping
wait_until 300 "the Job failed" e2e_job_done "$full-migrate"
expect_eq "the Job failed for its deadline" \
    "$(k -n "$ns" get job "$full-migrate" -o json | jq -r '.status.conditions[] | select(.type == "Failed") | .reason')" \
    DeadlineExceeded
not_sleeping() { ! sleeping; }
wait_until 60 "the pod's statement is gone" not_sleeping
pod=$(e2e_pod_of_job "$full-migrate") || fail "the Job has no pod"
expect_eq "the Job controller deleted the pod" \
    "$(k -n "$ns" get pod "$pod" -o json | jq '.metadata.deletionTimestamp != null')" true
terminated() { [ -n "$(e2e_terminated "$pod" migrate exitCode)" ]; }
wait_until 120 "the pod's container terminated" terminated
expect_eq "the pod's status: exit code" "$(e2e_terminated "$pod" migrate exitCode)" 143
msg=$(e2e_terminated "$pod" migrate message)
grep -q '^migrate stopped by signal 15' <<<"$msg" || fail "termination message: $msg"
echo "   ok: termination message: $msg" >&2
k -n "$ns" patch pod "$pod" --type=json -p '[{"op": "remove", "path": "/metadata/finalizers"}]' >/dev/null ||
    fail "cannot remove the test's finalizer"
expect_eq "migration 2 rolled back: versions" "$(e2e_versions)" "1"
expect_eq "no table orders" "$(e2e_columns orders)" ""
expect_eq "the Lease was released" "$(e2e_lease_holder "$full")" ""
