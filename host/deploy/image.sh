#!/usr/bin/env bash
# Builds the berth serve image from the release build (make build): the binary, the shared
# libraries it links (from this machine, so nothing is pulled), and the stock action
# components, on an empty base.
#
#   host/deploy/image.sh [TAG]     (default berth:local), into the engine at DOCKER_HOST
set -euo pipefail

tag=${1:-berth:local}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BERTH_BIN:-$root/target/release/berth}
actions=${BERTH_ACTIONS:-$root/target/release/actions}
[[ -x $bin ]] || { echo "image.sh: no $bin; run make build first" >&2; exit 1; }
[[ -d $actions ]] || { echo "image.sh: no $actions; run make build first" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/bin" "$ctx/rootfs/usr/lib/berth/actions" "$ctx/rootfs/tmp" "$ctx/rootfs/etc/berth" "$ctx/rootfs/var/cache/berth"
chmod 1777 "$ctx/rootfs/tmp" "$ctx/rootfs/var/cache/berth"
cp "$bin" "$ctx/rootfs/usr/bin/berth"
cp "$actions"/*.wasm "$ctx/rootfs/usr/lib/berth/actions/"
# The dynamic loader and every library the binary links, at the paths it looks for them.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
done
echo 'berth:x:65534:65534:berth:/tmp:/usr/bin/berth' >"$ctx/rootfs/etc/passwd"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV HOME=/tmp
ENTRYPOINT ["/usr/bin/berth"]
CMD ["serve", "--config", "/etc/berth/berth.toml"]
DOCKERFILE
docker build -q -t "$tag" "$ctx" >/dev/null
echo "$tag"
