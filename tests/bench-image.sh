#!/usr/bin/env bash
# Builds berth-test/busybox (FROM scratch + static busybox) on the engine at $1 if missing;
# prints its name. Used by benchmarks; the Rust test harness builds the same image itself.
set -euo pipefail
host=$1
img=berth-test/busybox:latest
docker_cli=$(command -v docker)
if "$docker_cli" -H "$host" image inspect "$img" >/dev/null 2>&1; then
    echo "$img"
    exit 0
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/tmp"
busybox=$(command -v busybox)
cp "$busybox" "$ctx/rootfs/bin/busybox"
for a in $("$busybox" --list); do
    [[ $a == busybox ]] || ln -s busybox "$ctx/rootfs/bin/$a"
done
printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n' >"$ctx/Dockerfile"
DOCKER_BUILDKIT=0 "$docker_cli" -H "$host" build -q --network none -t "$img" "$ctx" >/dev/null
echo "$img"
