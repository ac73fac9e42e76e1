#!/usr/bin/env bash
# End-to-end scenarios on a real single-node Kubernetes 1.20.2 (etcd, kube-apiserver, kubelet,
# kube-controller-manager, kube-scheduler, containerd, runc; scripts/kube-test-cluster.sh) and a
# throwaway PostgreSQL, all on 127.0.0.1: the chart installed with the real helm, the rollgate
# image run by the kubelet. Each test/e2e/test_*.sh (or the ones given) is one counted test,
# run in a subshell; the last line is "N passed, N failed".
#   RG_TOOLS=<scripts/tools.sh dir> test/e2e/run.sh [test/e2e/test_x.sh...]
# Needs root (containerd, kubelet). The rollgate image is RG_E2E_IMAGE from scripts/image.sh's
# storage (scripts/test.sh passes the one it built), else built here; it is exported as a
# docker-archive and imported into the node's containerd as localhost/rollgate:e2e.
# Everything started is stopped on exit, whatever happened (trap), and what the kubelet changed
# on the machine is put back (see scripts/kube-test-cluster.sh stop).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export RG_REPO=${RG_REPO:-$(cd "$here/../.." && pwd)}
passed=0
failed=0
work=$(mktemp -d)
export E2E_WORK=$work
kubedir=
pgdir=

finish() {
    local rc=$?
    set +e
    if [ -n "$kubedir" ]; then
        "$RG_REPO/scripts/kube-test-cluster.sh" stop "$kubedir" >&2
    fi
    if [ -n "$pgdir" ]; then
        "$RG_REPO/scripts/pg.sh" stop "$pgdir" >&2
    fi
    rm -rf "$work"
    # Died before or between scenarios (the cluster did not start): one failure at least.
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] || exit 1
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { echo "e2e: $*" >&2; }

[ "$(id -u)" -eq 0 ] || {
    log "needs root (containerd and the kubelet)"
    exit 1
}
[ -x "${RG_TOOLS:-}/helm" ] || {
    log "RG_TOOLS must name scripts/tools.sh's directory (helm)"
    exit 1
}

start=$SECONDS
export E2E_IMAGE=localhost/rollgate:e2e E2E_PAUSE=k8s.gcr.io/pause:3.2
source_image=${RG_E2E_IMAGE:-}
if [ -z "$source_image" ]; then
    source_image=$E2E_IMAGE
    "$RG_REPO/scripts/image.sh" "$source_image" >&2 || exit 1
fi
archive=$work/rollgate.tar
read -ra buildah <<<"$("$RG_REPO/scripts/image.sh" --buildah)"
"${buildah[@]}" push -q "$source_image" "docker-archive:$archive:$E2E_IMAGE" >&2 || exit 1
export RG_KUBECTL
RG_KUBECTL=$(dirname "$("$RG_REPO/scripts/kube-apiserver.sh" | tail -n 1)")/kubectl

pgdir=$(mktemp -d)
E2E_PG_URL=$("$RG_REPO/scripts/pg.sh" start "$pgdir") || exit 1
export E2E_PG_URL
kubedir=$(mktemp -d)
export E2E_KUBE_DIR=$kubedir
# Namespaces and databases of this run share a prefix; stop removes the pods' logs by it.
export E2E_PREFIX=e2e$$
KUBE_NODE=1 "$RG_REPO/scripts/kube-test-cluster.sh" start "$kubedir" >&2 || exit 1
mkdir -p "$kubedir/node"
echo "$E2E_PREFIX-" >"$kubedir/node/namespaces"
KUBE_NODE_IMAGES=$archive "$RG_REPO/scripts/kube-test-cluster.sh" node "$kubedir" >&2 || exit 1
log "cluster and node up in $((SECONDS - start))s"

scenarios=("$@")
[ "${#scenarios[@]}" -gt 0 ] || scenarios=("$here"/test_*.sh)
for t in "${scenarios[@]}"; do
    scenario=$(basename "$t" .sh)
    log "== $scenario"
    t0=$SECONDS
    if (
        # shellcheck source=lib.sh
        . "$here/lib.sh"
        trap e2e_exit EXIT
        # shellcheck disable=SC1090 # one scenario, named at run time
        . "$t"
    ); then
        passed=$((passed + 1))
        echo "ok $scenario ($((SECONDS - t0))s)"
    else
        failed=$((failed + 1))
        echo "FAIL $scenario ($((SECONDS - t0))s)"
    fi
done
log "e2e took $((SECONDS - start))s"
