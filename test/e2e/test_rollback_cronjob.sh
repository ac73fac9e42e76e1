# shellcheck shell=bash disable=SC2154 # ns, db, full: set by e2e_setup and the scenario
# The rollback CronJob: after the release went to migrations 1-3 and back to an image (here:
# a ConfigMap of files) that only has 1 and 2, `kubectl create job --from=cronjob/...` with a
# target of 1 undoes 3 with the down SQL stored in the history (the image lacks its file) and
# 2 with its file; a Job created without a target fails with exit 3 and changes nothing.
e2e_setup rollback
full=app-rollgate
e2e_migrations "$E2E_WORK/new" 1 2 3
e2e_values "$E2E_WORK/new" >"$E2E_WORK/new.json"
helm install app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/new.json" --timeout 10m >&2 ||
    fail "helm install failed"
expect_eq "installed: versions" "$(e2e_versions)" "1,2,3"

step "the older files: helm upgrade to a release without migration 3 (onNewerSchema warn)"
e2e_migrations "$E2E_WORK/old" 1 2
e2e_values "$E2E_WORK/old" >"$E2E_WORK/old.json"
helm upgrade app "$RG_REPO/charts/rollgate" -n "$ns" -f "$E2E_WORK/old.json" --timeout 10m >&2 ||
    fail "helm upgrade to the older files failed"
expect_eq "still at 1,2,3" "$(e2e_versions)" "1,2,3"
# The migrations ConfigMap the CronJob mounts now lacks version 3's files.
files=$(k -n "$ns" get configmap "$full-migrations" -o json | jq -r '.data | keys | join(",")')
expect_eq "the mounted files" "$files" \
    "0001_accounts.down.sql,0001_accounts.up.sql,0002_accounts_email.down.sql,0002_accounts_email.up.sql"

step "a rollback Job without a target"
k -n "$ns" create job --from="cronjob/$full-rollback" rollback-none >/dev/null || fail "create job failed"
wait_until 300 "Job rollback-none finished" e2e_job_done rollback-none
pod=$(e2e_pod_of_job rollback-none)
expect_eq "exit 3 (configuration: no target)" "$(e2e_terminated "$pod" rollback exitCode)" 3
expect_eq "nothing changed" "$(e2e_versions)" "1,2,3"

step "kubectl set env + create job --from=cronjob with target 1"
k -n "$ns" set env "cronjob/$full-rollback" -c rollback ROLLGATE_MIGRATIONS_TARGET=1 >/dev/null ||
    fail "kubectl set env failed"
k -n "$ns" create job --from="cronjob/$full-rollback" rollback-1 >/dev/null || fail "create job failed"
wait_until 300 "Job rollback-1 finished" e2e_job_done rollback-1
expect_eq "the Job succeeded" "$(k -n "$ns" get job rollback-1 -o jsonpath='{.status.succeeded}')" 1
pod=$(e2e_pod_of_job rollback-1)
expect_eq "exit 0" "$(e2e_terminated "$pod" rollback exitCode)" 0
msg=$(e2e_terminated "$pod" rollback message)
grep -q '^migrate: rolled back 2 migrations' <<<"$msg" || fail "termination message: $msg"
echo "   ok: termination message: $msg" >&2
expect_eq "versions after the rollback" "$(e2e_versions)" "1"
expect_eq "table orders dropped (stored down SQL of 3)" "$(e2e_columns orders)" ""
expect_eq "column email dropped (down file of 2)" "$(e2e_columns accounts)" "id"
