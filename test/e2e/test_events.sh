# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# The Events rollgate posts on its own pod (POD_NAME, POD_NAMESPACE from the downward API, the
# Role's events/create), read back with kubectl: MigrationStarted and MigrationSucceeded on the
# pod of a Job that migrates, MigrationStarted and MigrationFailed on the pod
# of one whose migration fails (exit 6); none on a pod that found nothing to do.
e2e_setup events
full=app-rollgate
e2e_migrations "$E2E_WORK/events" 1
printf 'CREATE TABLE orders (id bigint PRIMARY KEY);\nSELECT 1/0;\n' >"$E2E_WORK/events/0002_orders.up.sql"
e2e_values "$E2E_WORK/events" | jq '.migrations.target = "1"' >"$E2E_WORK/events.json"
helm install app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/events.json" --timeout 10m >&2 ||
    fail "helm install failed"
expect_eq "versions" "$(e2e_versions)" "1"
pod=$(e2e_pod_of_job "$full-migrate") || fail "the hook Job has no pod"
events=$(e2e_events "$pod")
echo "   Events on $pod: $(tr '\n' '|' <<<"$events")" >&2
grep -q '^MigrationStarted: ' <<<"$events" || fail "no MigrationStarted Event on $pod"
grep -q '^MigrationSucceeded: ' <<<"$events" || fail "no MigrationSucceeded Event on $pod"

step "a Job migrating to 2 (which fails), from the rollback CronJob with target 2"
k -n "$ns" set env "cronjob/$full-rollback" -c rollback ROLLGATE_MIGRATIONS_TARGET=2 >/dev/null ||
    fail "kubectl set env failed"
k -n "$ns" create job --from="cronjob/$full-rollback" to-2 >/dev/null || fail "create job failed"
wait_until 300 "Job to-2 finished" e2e_job_done to-2
pod=$(e2e_pod_of_job to-2)
expect_eq "exit 6" "$(e2e_terminated "$pod" rollback exitCode)" 6
events=$(e2e_events "$pod")
echo "   Events on $pod: $(tr '\n' '|' <<<"$events")" >&2
grep -q '^MigrationStarted: ' <<<"$events" || fail "no MigrationStarted Event on $pod"
grep -q '^MigrationFailed: ' <<<"$events" ||
    fail "no MigrationFailed Event on $pod"
expect_eq "versions unchanged" "$(e2e_versions)" "1"

step "a Job with nothing to do posts no Event"
k -n "$ns" set env "cronjob/$full-rollback" -c rollback ROLLGATE_MIGRATIONS_TARGET=1 >/dev/null ||
    fail "kubectl set env failed"
k -n "$ns" create job --from="cronjob/$full-rollback" to-1 >/dev/null || fail "create job failed"
wait_until 300 "Job to-1 finished" e2e_job_done to-1
pod=$(e2e_pod_of_job to-1)
expect_eq "exit 0" "$(e2e_terminated "$pod" rollback exitCode)" 0
expect_eq "no rollgate Event on $pod" "$(e2e_events "$pod" | grep -c '^Migration')" 0
