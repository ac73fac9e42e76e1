# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# helm install: the pre-install hook Job runs the real image and migrates before Helm creates
# the release's other objects; the application's pods, whose init container is the chart
# README's `rollgate wait`, start only once the schema is current.
e2e_setup install
full=app-rollgate
e2e_migrations "$E2E_WORK/install" 1 2
e2e_values "$E2E_WORK/install" >"$E2E_WORK/install.json"

step "the application's Deployment exists before the release: its pods cannot start"
e2e_deployment web 2 wait
wait_until 120 "web's 2 pods exist" e2e_pods app=web 2
expect_eq "web pods Ready before the install" "$(e2e_ready_pods app=web)" 0

step "helm install"
helm install app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/install.json" --timeout 10m >&2 ||
    fail "helm install failed"
job=$(k -n "$ns" get job "$full-migrate" -o json) || fail "no hook Job $full-migrate"
expect_eq "the hook Job succeeded" "$(jq -r '.status.succeeded // 0' <<<"$job")" 1
expect_eq "the hook Job ran the image under test" \
    "$(jq -r '.spec.template.spec.containers[0].image' <<<"$job")" "$E2E_IMAGE"
pod=$(e2e_pod_of_job "$full-migrate") || fail "the hook Job has no pod"
expect_eq "the Job's pod exited 0" "$(e2e_terminated "$pod" migrate exitCode)" 0
msg=$(e2e_terminated "$pod" migrate message)
grep -q 'applied 2' <<<"$msg" || fail "termination message does not say 2 were applied: $msg"
echo "   ok: termination message: $msg" >&2
expect_eq "the database has both migrations" "$(e2e_versions)" "1,2"
expect_eq "applied by the Job's pod (its lease identity)" \
    "$(e2e_psql "$db" -c "SELECT string_agg(DISTINCT applied_by, ',') FROM rollgate_migrations")" "$pod"
expect_eq "the Lease was released" "$(e2e_lease_holder "$full")" ""

# Hook order: the release's own objects (the rollback CronJob) come after the Job completed.
done_at=$(date -d "$(jq -r .status.completionTime <<<"$job")" +%s)
cron_at=$(date -d "$(k -n "$ns" get cronjob "$full-rollback" -o jsonpath='{.metadata.creationTimestamp}')" +%s)
[ "$cron_at" -ge "$done_at" ] ||
    fail "the release's CronJob was created at $cron_at, before the hook Job completed at $done_at"
echo "   ok: release objects created after the hook Job completed" >&2

step "the application's pods start once the schema is current"
wait_until 300 "web's 2 pods Ready" e2e_ready app=web 2
applied_at=$(e2e_psql "$db" -c "SELECT floor(extract(epoch FROM max(applied_at)))::bigint FROM rollgate_migrations")
for p in $(k -n "$ns" get pods -l app=web -o jsonpath='{.items[*].metadata.name}'); do
    expect_eq "$p: rollgate wait exited 0" "$(e2e_terminated "$p" rollgate-wait exitCode)" 0
    started=$(k -n "$ns" get pod "$p" -o json |
        jq -r '.status.containerStatuses[] | select(.name == "app") | .state.running.startedAt')
    [ "$(date -d "$started" +%s)" -ge "$applied_at" ] ||
        fail "$p's app container started at $started, before the last migration ($applied_at)"
done
echo "   ok: the app containers started after the migrations were applied" >&2
expect_eq "nothing more was applied" "$(e2e_versions)" "1,2"
