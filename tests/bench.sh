#!/usr/bin/env bash
# make bench: berth against the tools it replaces, on an isolated engine.
#   whole process: `berth run system.ping` vs `curl --unix-socket .../_ping`,
#                  `berth run system.version` vs `docker version`, cold vs cached;
#   in process:    compile, cache load, instantiate (pooled and not), added latency.
set -euo pipefail
cd "$(dirname "$0")/.."
engine_dir=${1:-/tmp/berth-demo-engine}
unset RUST_BACKTRACE # an anyhow error path costs ~70 ms with it set

if ! command -v hyperfine >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
    else
        echo "bench.sh: hyperfine is needed (apt-get install hyperfine)" >&2
        exit 1
    fi
fi
host=$(tests/engine.sh start "$engine_dir")
sock=${host#unix://}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DOCKER_HOST=$host BERTH_ACTIONS=$PWD/target/release/actions BERTH_CACHE=$work/cache
berth=$PWD/target/release/berth
docker_cli=$(command -v docker || true)

"$berth" run system.version >/dev/null # warm the cache and the index
hf() { hyperfine -N --style none --warmup 10 "$@" 2>/dev/null >/dev/null; }
hf --runs 200 --export-json "$work/ping.json" "$berth run system.ping" "curl -sf --unix-socket $sock http://docker/_ping"
if [[ -n $docker_cli ]]; then
    hf --runs 100 --export-json "$work/version.json" "$berth run system.version" "$docker_cli -H $host version"
else
    hf --runs 100 --export-json "$work/version.json" "$berth run system.version"
fi
hyperfine -N --style none --warmup 2 --runs 15 --export-json "$work/cold.json" "$berth --no-cache run system.version" "$berth run system.version" >/dev/null 2>&1

python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
def load(n):
    return [(r["command"], r["median"] * 1e3, r["mean"] * 1e3) for r in json.load(open(f"{w}/{n}.json"))["results"]]
ping, version, cold = load("ping"), load("version"), load("cold")
print("whole process (median of hyperfine runs, ms)")
for rows in (ping, version, cold):
    for cmd, med, mean in rows:
        print(f"  {cmd.split('/')[-1][:62]:<64} {med:8.2f}   (mean {mean:.2f})")
def check(label, ratio, op, target):
    ok = ratio <= target if op == "<=" else ratio >= target
    print(f"  {label:<52} {ratio:6.2f}x   target {op} {target}x   {'PASS' if ok else 'MISS'}")
print("ratios")
check("berth system.ping / curl --unix-socket _ping", ping[0][1] / ping[1][1], "<=", 0.6)
if len(version) > 1:
    check("berth system.version / docker version", version[0][1] / version[1][1], "<=", 0.5)
check("cold (no cache) / cached system.version", cold[0][1] / cold[1][1], ">=", 15)
PY
echo "in process"
target/release/examples/bench_runtime "$BERTH_ACTIONS" "$host" | sed 's/^/  /'
