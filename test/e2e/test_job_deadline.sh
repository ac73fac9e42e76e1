# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# The chart's migrate Job on a migration that runs past its pod's activeDeadlineSeconds: the
# kubelet sends SIGTERM, rollgate cancels the statement, rolls its transaction back, releases
# the Lease and exits 143 with its termination message.
# Kubelet 1.20 does not put that exit into the pod's status on either deadline (seen here): at
# the Job's activeDeadlineSeconds the Job controller deletes the pod and the kubelet reports
# its container as ContainerStatusUnknown (137, "could not be located"); at the pod's own
# deadline it marks the pod Failed/DeadlineExceeded and leaves the container "running". So the
# exit code is read where the kubelet would copy it from: the container runtime's record
# (containerd's CRI status of the container named in the pod's status), and the message from
# the file the kubelet mounted as the container's /dev/termination-log. The pod's deadline is
# used because the pod, its container and that file stay until the test ends.
e2e_setup deadline
full=app-rollgate
e2e_migrations "$E2E_WORK/deadline" 1
echo 'CREATE TABLE orders (id bigint PRIMARY KEY); SELECT pg_sleep(600);' >"$E2E_WORK/deadline/0002_slow.up.sql"
e2e_values "$E2E_WORK/deadline" >"$E2E_WORK/deadline.json"
helm template app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/deadline.json" --kube-version 1.20.2 \
    --show-only templates/serviceaccount.yaml --show-only templates/role.yaml \
    --show-only templates/rolebinding.yaml --show-only templates/configmap.yaml \
    --show-only templates/migrations-configmap.yaml >"$E2E_WORK/deadline.yaml" || fail "helm template failed"
helm template app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/deadline.json" --kube-version 1.20.2 \
    --show-only templates/job.yaml | yq -y '.spec.template.spec.activeDeadlineSeconds = 45' \
    >"$E2E_WORK/deadline-job.yaml" || fail "helm template failed"
k -n "$ns" apply -f "$E2E_WORK/deadline.yaml" >/dev/null || fail "cannot apply the chart's RBAC and ConfigMaps"
wait_until 120 "the ServiceAccount's token" e2e_sa_token "$full"
k -n "$ns" apply -f "$E2E_WORK/deadline-job.yaml" >/dev/null || fail "cannot apply the chart's Job"

sleeping() {
    [ "$(e2e_psql "$db" -c "SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()")" -ge 1 ]
}
wait_until 120 "migration 2 running (pg_sleep in pg_stat_activity)" sleeping
wait_until 300 "the Job failed" e2e_job_done "$full-migrate"
pod=$(e2e_pod_of_job "$full-migrate") || fail "the Job has no pod"
expect_eq "the pod failed for its deadline" \
    "$(k -n "$ns" get pod "$pod" -o jsonpath='{.status.phase} {.status.reason}')" "Failed DeadlineExceeded"
cid=$(k -n "$ns" get pod "$pod" -o json |
    jq -r '.status.containerStatuses[] | select(.name == "migrate") | .containerID | sub("^containerd://"; "")')
status_file=$E2E_KUBE_DIR/node/containerd/root/io.containerd.grpc.v1.cri/containers/$cid/status
exited() { [ "$(jq -r .FinishedAt "$status_file")" != 0 ]; }
wait_until 120 "container $cid exited (containerd's record)" exited
expect_eq "the container's exit code (containerd)" "$(jq -r .ExitCode "$status_file")" 143
uid=$(k -n "$ns" get pod "$pod" -o jsonpath='{.metadata.uid}')
msg=$(cat "$E2E_KUBE_DIR/node/kubelet/pods/$uid/containers/migrate/"*) || fail "no termination log file"
grep -q '^migrate stopped by signal 15' <<<"$msg" || fail "termination message: $msg"
echo "   ok: termination message: $msg" >&2
not_sleeping() { ! sleeping; }
wait_until 60 "the pod's statement is gone" not_sleeping
expect_eq "migration 2 rolled back: versions" "$(e2e_versions)" "1"
expect_eq "no table orders" "$(e2e_columns orders)" ""
expect_eq "the Lease was released" "$(e2e_lease_holder "$full")" ""
