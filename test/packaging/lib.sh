# Sourced by the packaging tests (test/packaging/test_*.sh). Each test script is run by
# test/packaging/run.sh with these variables set:
#   RG_TOOLS           directory with helm 3.17, kubectl 1.32, action-validator (scripts/tools.sh)
#   RG_KUBECTL         kubectl 1.20.2, the test API server's own version (scripts/kube-apiserver.sh)
#   RG_STATIC_BIN      the fully static rollgate (the image's /rollgate, see RG_IMAGE_DIR)
#   RG_IMAGE_DIR       the image scripts/image.sh built and exported (rootfs/, image.json)
#   RG_TEST_KUBE_DIR   a running scripts/kube-test-cluster.sh cluster (admin.kubeconfig, ca.crt, port)
#   RG_TEST_PG_URL     a running throwaway PostgreSQL 15 (scripts/pg.sh), loopback TCP
#   RG_TEST_PG_TLS_DIR that server's TLS files (scripts/pg.sh start DIR --tls: DIR/tls)
#   RG_REPO            the repository root
# A script prints one line per check ("ok NAME" / "FAIL NAME: why") and ends with t_done, whose
# last line is "N passed, N failed"; its exit status is non-zero when any check failed.

set -uo pipefail

t_passed=0
t_failed=0
t_scratch=$(mktemp -d)
trap 'rm -rf "$t_scratch"' EXIT

t_ok() {
    t_passed=$((t_passed + 1))
    echo "ok $1"
}

t_fail() {
    t_failed=$((t_failed + 1))
    echo "FAIL $1: $2"
}

# check NAME CMD...: passes when CMD succeeds; on failure its output is shown.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        t_ok "$name"
    else
        t_fail "$name" "exit $?: $(tail -n 20 <<<"$out")"
    fi
}

# check_rc WANT NAME CMD...: passes when CMD exits with WANT.
check_rc() {
    local want=$1 name=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" -eq "$want" ]; then
        t_ok "$name"
    else
        t_fail "$name" "exit $rc, want $want: $(tail -n 20 <<<"$out")"
    fi
}

# check_grep NAME PATTERN FILE: passes when the extended regex PATTERN matches a line of FILE.
check_grep() {
    if grep -Eq -- "$2" "$3"; then
        t_ok "$1"
    else
        t_fail "$1" "no line of $3 matches /$2/"
    fi
}

# check_no_grep NAME PATTERN FILE: passes when no line of FILE matches PATTERN.
check_no_grep() {
    if grep -Eq -- "$2" "$3"; then
        t_fail "$1" "$3 has: $(grep -Em3 -- "$2" "$3")"
    else
        t_ok "$1"
    fi
}

# check_eq NAME GOT WANT
check_eq() {
    if [ "$2" = "$3" ]; then
        t_ok "$1"
    else
        t_fail "$1" "got '$2', want '$3'"
    fi
}

t_done() {
    echo "$t_passed passed, $t_failed failed"
    [ "$t_failed" -eq 0 ]
}

helm() { "$RG_TOOLS/helm" "$@"; }
kubectl132() { "$RG_TOOLS/kubectl" "$@"; }
# kubectl 1.20 against the test API server, as its admin (namespaced calls say -n).
kubectl_admin() { "$RG_KUBECTL" --kubeconfig "$RG_TEST_KUBE_DIR/admin.kubeconfig" "$@"; }
