#!/usr/bin/env bash
# The image the Dockerfile builds (scripts/image.sh --export): the binary alone, the non-root
# user, the entrypoint and the OCI labels. The other packaging tests run this image's binary
# (RG_STATIC_BIN is its /rollgate), so what ships is what is tested.
# Needs RG_IMAGE_DIR (the export: rootfs/ and image.json).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

root=$RG_IMAGE_DIR/rootfs
config=$(jq -c .OCIv1.config "$RG_IMAGE_DIR/image.json")
label() { jq -r --arg k "org.opencontainers.image.$1" '.Labels[$k] // ""' <<<"$config"; }

check_eq "the image holds /rollgate and nothing else" "$(cd "$root" && find . -mindepth 1 | sort)" "./rollgate"
size=$(stat -c %s "$root/rollgate")
echo "image: /rollgate is $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }') MiB)"
check "its binary is at most 8 MiB" test "$size" -le $((8 * 1024 * 1024))
check_grep "its binary is statically linked" 'statically linked' <(file -L "$root/rollgate")
check_no_grep "it asks for no ELF interpreter" 'INTERP' <(readelf -lW "$root/rollgate")
check_eq "it runs as 65532:65532" "$(jq -r .User <<<"$config")" "65532:65532"
check_eq "ENTRYPOINT is /rollgate" "$(jq -c .Entrypoint <<<"$config")" '["/rollgate"]'
check_eq "CMD is migrate" "$(jq -c .Cmd <<<"$config")" '["migrate"]'
check_eq "architecture amd64" "$(jq -r .OCIv1.architecture "$RG_IMAGE_DIR/image.json")" amd64
check_eq "label version is the project's" "$(label version)" \
    "$(sed -nE 's/.*project\(rollgate VERSION ([0-9.]+).*/\1/p' "$RG_REPO/CMakeLists.txt")"
check_eq "label revision is the commit built" "$(label revision)" \
    "$(git -C "$RG_REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
for k in title description source; do
    check "label $k is set" test -n "$(label "$k")"
done
check_grep "the binary says its version" '^rollgate 0\.1\.0' <("$root/rollgate" --version 2>&1)
t_done
