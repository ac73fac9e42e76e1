#!/usr/bin/env bash
# Checks .github/: every workflow passes action-validator (GitHub's workflow schema; a broken
# copy must fail it, so the check can fail), every `run:` script parses as bash, actions are
# pinned to major versions, permissions are least privilege, and the jobs do what
# shared/DESIGN.md "Packaging" asks (the README's test command, the static build and its size
# limit, chart lint, the kind e2e with `helm upgrade --atomic`, the tag-triggered release).
# The e2e job's own files (.github/e2e) are checked as far as they can be without a cluster.
# Needs RG_REPO, RG_TOOLS and RG_STATIC_BIN (rollgate validate checks the e2e migrations).
# jq and yq filters are single-quoted on purpose.
# shellcheck disable=SC2016
# shellcheck source=test/packaging/lib.sh
source "$RG_REPO/test/packaging/lib.sh"

wf=$RG_REPO/.github/workflows
e2e=$RG_REPO/.github/e2e
ci=$wf/ci.yml
rel=$wf/release.yml
s=$t_scratch

validate() { "$RG_TOOLS/action-validator" "$1"; }

# y FILE FILTER: jq FILTER over the YAML FILE, compact, keys sorted.
y() { yq -cS "$2" "$1" 2>&1; }

# --- schema -----------------------------------------------------------------------------------
shopt -s nullglob
files=("$wf"/*.yml "$wf"/*.yaml)
shopt -u nullglob
check_eq "the workflows are ci.yml and release.yml" \
    "$(for f in "${files[@]}"; do basename "$f"; done | sort | tr '\n' ' ')" "ci.yml release.yml "
for f in "${files[@]}"; do
    check "action-validator accepts $(basename "$f")" validate "$f"
done

# Broken copies must fail, or the checks above prove nothing.
mutate() { # NAME SRC SED-EXPR: $s/NAME.yml, which must differ from SRC
    sed -E "$3" "$2" >"$s/$1.yml"
    ! cmp -s "$2" "$s/$1.yml"
}
check "broken copy 1 differs (runs-on misspelt)" mutate broken-runs-on "$ci" 's/^    runs-on:/    run-on:/'
check_rc 1 "action-validator rejects a job without runs-on" validate "$s/broken-runs-on.yml"
check "broken copy 2 differs (needs an unknown job)" mutate broken-needs "$ci" 's/needs: static/needs: statik/'
check_rc 1 "action-validator rejects needs: on an unknown job" validate "$s/broken-needs.yml"
check "broken copy 3 differs (bad permission value)" mutate broken-perm "$rel" 's/packages: write/packages: push/'
check_rc 1 "action-validator rejects an unknown permission level" validate "$s/broken-perm.yml"

# --- every run: script parses as bash ---------------------------------------------------------
n=0
for f in "${files[@]}"; do
    while IFS= read -r -d '' script; do
        n=$((n + 1))
        printf '%s\n' "$script" >"$s/run-$n.sh"
        echo "$(basename "$f"): step $n" >"$s/run-$n.where"
    done < <(yq -j '.jobs[].steps[]? | select(.run) | .run + "\u0000"' "$f")
done
bad=""
for ((i = 1; i <= n; i++)); do
    bash -n "$s/run-$i.sh" 2>/dev/null || bad+="$(cat "$s/run-$i.where"); "
done
check "the workflows have run: steps ($n)" test "$n" -ge 10
check_eq "every run: step parses as bash" "$bad" ""
check "bash -n .github/e2e/lib.sh" bash -n "$e2e/lib.sh"

# --- actions pinned to a major version, least-privilege permissions ---------------------------
uses=$(for f in "${files[@]}"; do yq -r '.. | objects | .uses? // empty' "$f"; done | sort -u)
check "the workflows use actions" test -n "$uses"
check_eq "every action is pinned to a major version (owner/repo@vN)" \
    "$(grep -Ev '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@v[0-9]+$' <<<"$uses" | tr '\n' ' ')" ""
check_eq "ci.yml: permissions contents: read, and no job asks for more" \
    "$(y "$ci" '[.permissions, [.jobs[] | .permissions // empty]]')" '[{"contents":"read"},[]]'
check_eq "release.yml: permissions contents: read, packages: write, and no job asks for more" \
    "$(y "$rel" '[.permissions, [.jobs[] | .permissions // empty]]')" '[{"contents":"read","packages":"write"},[]]'

# --- ci.yml -----------------------------------------------------------------------------------
# runs JOB: the job's run: scripts, one after another.
runs() { yq -r --arg j "$1" '.jobs[$j].steps[] | .run // empty' "$ci" >"$s/ci-$1.sh"; }
steps_uses() { y "$ci" "[.jobs[\"$1\"].steps[] | .uses // empty | sub(\"@.*\"; \"\")]"; }
for j in test static chart e2e; do runs "$j"; done
check_eq "ci.yml: triggers on push and pull_request" \
    "$(y "$ci" '.on | [has("push"), has("pull_request")]')" '[true,true]'
check_eq "ci.yml: jobs test, static, chart, e2e" "$(y "$ci" '.jobs | keys')" '["chart","e2e","static","test"]'
check_eq "ci.yml: test runs in debian:bookworm, privileged" \
    "$(y "$ci" '.jobs.test.container | [.image, .options]')" '["debian:bookworm","--privileged"]'
check_grep "ci.yml: test runs scripts/test.sh" '^scripts/test\.sh$' "$s/ci-test.sh"
check_grep "ci.yml: static runs scripts/build-static.sh" 'scripts/build-static\.sh' "$s/ci-static.sh"
check_grep "ci.yml: static measures the size with stat -c %s" 'stat -c %s' "$s/ci-static.sh"
check_grep "ci.yml: static fails above 8 MiB (8388608 bytes)" '-gt 8388608' "$s/ci-static.sh"
check_grep "ci.yml: static shows file's verdict" '^ *file ' "$s/ci-static.sh"
check_grep "ci.yml: static uploads the binary" '"actions/upload-artifact"' <(steps_uses static)
check_grep "ci.yml: chart runs scripts/tools.sh" 'scripts/tools\.sh' "$s/ci-chart.sh"
check_grep "ci.yml: chart runs helm lint --strict charts/rollgate" 'helm lint --strict charts/rollgate' "$s/ci-chart.sh"
check_grep "ci.yml: chart runs helm template" 'helm template ' "$s/ci-chart.sh"
check_eq "ci.yml: e2e needs static" "$(y "$ci" '.jobs.e2e.needs')" '"static"'
check_grep "ci.yml: e2e runs on kind (helm/kind-action)" '"helm/kind-action"' <(steps_uses e2e)
check_grep "ci.yml: e2e builds the Dockerfile" '"docker/build-push-action"' <(steps_uses e2e)
check_eq "ci.yml: e2e loads the built image (file Dockerfile, load: true)" \
    "$(y "$ci" '[.jobs.e2e.steps[] | select(.uses // "" | startswith("docker/build-push-action")) | .with | [.file, .load]]')" \
    '[["Dockerfile",true]]'
check_grep "ci.yml: e2e kind load docker-image" 'kind load docker-image rollgate:e2e' "$s/ci-e2e.sh"
check_grep "ci.yml: e2e helm install" '^ *helm install rollgate charts/rollgate' "$s/ci-e2e.sh"
check_grep "ci.yml: e2e helm upgrade --atomic" 'helm upgrade rollgate charts/rollgate --atomic' "$s/ci-e2e.sh"
check_grep "ci.yml: e2e asserts the atomic upgrade fails" '^ *if helm upgrade .*--atomic' "$s/ci-e2e.sh"
check_grep "ci.yml: e2e checks the release rolled back to revision 2" '"Rollback to 2"' "$s/ci-e2e.sh"
check_grep "ci.yml: e2e checks version 3 is not recorded" 'WHERE version = 3' "$s/ci-e2e.sh"
check_grep "ci.yml: e2e creates Secret rollgate-database with a URL naming the user" \
    'secret generic rollgate-database' "$s/ci-e2e.sh"
check_grep "ci.yml: e2e applies the plain manifests" 'kubectl apply -k \.github/e2e/manifests$' "$s/ci-e2e.sh"
check_grep "ci.yml: e2e runs the README's rollback with -l" \
    'kubectl apply -k \.github/e2e/manifests-rollback -l app\.kubernetes\.io/component=rollback' "$s/ci-e2e.sh"

# --- the e2e job's files ----------------------------------------------------------------------
check_grep "e2e lib: the chart values (configMap source, existing Secret, local image)" \
    'migrations\.source=configMap' "$e2e/lib.sh"
for v in database.existingSecret=rollgate-database image.repository=rollgate image.tag=e2e image.pullPolicy=Never; do
    check_grep "e2e lib: --set $v" "--set ${v//./\\.}( |$)" "$e2e/lib.sh"
done
# The --set-file keys must reach helm as one map key per file (dots escaped).
mkdir -p "$s/chart/templates"
printf 'apiVersion: v2\nname: probe\nversion: 0.1.0\n' >"$s/chart/Chart.yaml"
printf 'migrations:\n  files: {}\n' >"$s/chart/values.yaml"
printf '%s\n' '{{ .Values.migrations.files | toJson }}' >"$s/chart/templates/files.txt"
probe() { # shellcheck disable=SC2154 # mig_args comes from .github/e2e/lib.sh
    (cd "$RG_REPO" && source .github/e2e/lib.sh && migrations "$@" &&
        helm template probe "$s/chart" "${mig_args[@]}" --show-only templates/files.txt) |
        grep -v '^#\|^---' | jq -cS 'keys'
}
check_eq "e2e lib: migrations 0001 0002 gives helm one key per file" \
    "$(probe 0001_create_widgets 0002_create_gadgets 2>&1)" \
    '["0001_create_widgets.down.sql","0001_create_widgets.up.sql","0002_create_gadgets.down.sql","0002_create_gadgets.up.sql"]'
check_rc 1 "e2e lib: a migration name with no files fails" \
    bash -c "cd '$RG_REPO' && source .github/e2e/lib.sh && migrations 0009_nothing"
check_grep "e2e: 0003 fails on purpose" '1 / 0' "$e2e/migrations/0003_fails.up.sql"
check "e2e: rollgate validate accepts .github/e2e/migrations" \
    "$RG_STATIC_BIN" validate --dir "$e2e/migrations" --database-url 'postgres://u@127.0.0.1:1/x'
check_eq "e2e: postgres.yaml is a Secret, Deployment and Service named postgres" \
    "$(yq -s -cS 'map(.kind + "/" + .metadata.name)' "$e2e/postgres.yaml" 2>&1)" \
    '["Secret/postgres","Deployment/postgres","Service/postgres"]'
check "e2e: the manifests overlay renders" kubectl132 kustomize "$e2e/manifests" -o "$s/e2e-manifests.yaml"
check_eq "e2e: the overlay sets the namespace and the app image on every rollgate container" \
    "$(yq -s -cS '[.[] | .metadata.namespace] | unique' "$s/e2e-manifests.yaml" 2>&1) $(yq -s -cS \
        '[.[] | .spec.template.spec // empty | (.initContainers // [], .containers)[] | .image] | unique' \
        "$s/e2e-manifests.yaml" 2>&1)" \
    '["manifests-e2e"] ["registry.k8s.io/pause:3.9","rollgate-app:e2e"]'
check "e2e: the rollback overlay renders" kubectl132 kustomize "$e2e/manifests-rollback" -o "$s/e2e-rollback.yaml"
check_eq "e2e: the rollback overlay sets target 1 on the rollback container only" \
    "$(yq -s -cS '[.[] | .spec.template.spec // empty | (.initContainers // [], .containers)[]
        | {c: .name, t: [.env[]? | select(.name == "ROLLGATE_MIGRATIONS_TARGET") | .value]} | select(.t != [])]' \
        "$s/e2e-rollback.yaml" 2>&1)" '[{"c":"rollback","t":["1"]}]'

# --- release.yml ------------------------------------------------------------------------------
yq -r '.jobs[].steps[] | .run // empty' "$rel" >"$s/release.sh"
check_eq "release.yml: triggers only on pushed tags v*" "$(y "$rel" '.on')" '{"push":{"tags":["v*"]}}'
check_eq "release.yml: the docker actions, in order" \
    "$(y "$rel" '[.jobs.image.steps[] | .uses // empty | sub("@.*"; "") | select(startswith("docker/"))]')" \
    '["docker/setup-buildx-action","docker/login-action","docker/metadata-action","docker/build-push-action"]'
check_eq "release.yml: logs in to ghcr.io with the job's token" \
    "$(y "$rel" '[.jobs.image.steps[] | select(.uses // "" | startswith("docker/login-action")) | .with.registry, .with.password]')" \
    '["ghcr.io","${{ secrets.GITHUB_TOKEN }}"]'
check_eq "release.yml: pushes to ghcr.io with metadata-action's tags and labels" \
    "$(y "$rel" '[.jobs.image.steps[] | select(.uses // "" | startswith("docker/build-push-action")) | .with | [.push, .tags, .labels]]')" \
    '[[true,"${{ steps.meta.outputs.tags }}","${{ steps.meta.outputs.labels }}"]]'
check_grep "release.yml: metadata-action names a ghcr.io image" 'images: ghcr\.io/' "$rel"
check_grep "release.yml: helm package" 'helm package charts/rollgate' "$s/release.sh"
check_grep "release.yml: helm push to oci://ghcr.io" 'helm push .* "?oci://ghcr\.io/' "$s/release.sh"

t_done
