# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# The chart's migrate Job with activeDeadlineSeconds, on a migration that runs longer: at the
# deadline the Job controller deletes the pod, the kubelet sends SIGTERM, rollgate cancels the
# statement, rolls its transaction back, releases the Lease and exits 143, which the pod's
# last status shows (read from a watch: the pod object is deleted right after).
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
    --show-only templates/job.yaml >"$E2E_WORK/deadline-job.yaml" || fail "helm template failed"
grep -q 'activeDeadlineSeconds: 60' "$E2E_WORK/deadline-job.yaml" || fail "the Job has no activeDeadlineSeconds 60"
k -n "$ns" apply -f "$E2E_WORK/deadline.yaml" >/dev/null || fail "cannot apply the chart's RBAC and ConfigMaps"
wait_until 120 "the ServiceAccount's token" e2e_sa_token "$full"
e2e_background k -n "$ns" get pods -l "job-name=$full-migrate" --watch -o json >"$E2E_WORK/deadline.watch"
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
wait_until 60 "the pod deleted" e2e_pods "job-name=$full-migrate" 0
e2e_background_stop
last=$(jq -s -c '[.[] | .status.containerStatuses[]? | select(.name == "migrate") | .state.terminated
    | select(. != null)] | last' "$E2E_WORK/deadline.watch")
expect_eq "the pod's last status: exit code" "$(jq -r .exitCode <<<"$last")" 143
grep -q '^migrate stopped by signal 15' <<<"$(jq -r .message <<<"$last")" ||
    fail "termination message: $(jq -r .message <<<"$last")"
echo "   ok: termination message: $(jq -r .message <<<"$last")" >&2
expect_eq "migration 2 rolled back: versions" "$(e2e_versions)" "1"
expect_eq "no table orders" "$(e2e_columns orders)" ""
expect_eq "the Lease was released" "$(e2e_lease_holder "$full")" ""
