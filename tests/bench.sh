#!/usr/bin/env bash
# make bench: berth against the tools it replaces, on an isolated engine.
#   whole process: `berth run system.ping` vs `curl --unix-socket .../_ping`,
#                  `berth run system.version` vs `docker version`, cold vs cached;
#   in process:    compile, cache load, instantiate (pooled and not), added latency, CPU per
#                  call of the engine call alone, floor.ping (that call in a sandbox) and
#                  system.ping.
set -euo pipefail
cd "$(dirname "$0")/.."
engine_dir=${1:-/tmp/berth-demo-engine}
unset RUST_BACKTRACE # an anyhow error path costs ~70 ms with it set

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v wrk >/dev/null || need+=(wrk)
[[ -x /usr/bin/time ]] || need+=(time)
if [[ ${#need[@]} -gt 0 ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "bench.sh: ${need[*]} needed (apt-get install ${need[*]})" >&2
        exit 1
    fi
fi
host=$(tests/engine.sh start "$engine_dir")
sock=${host#unix://}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Every figure with a target or a comparison is also a row of the README's table, written at
# the end (between the bench markers): `from benchrow import row` in the Python below.
export BENCH_ROWS=$work/rows.jsonl PYTHONPATH=$work
cat >"$work/benchrow.py" <<'PY'
import json, os
def row(measure, figure, target="", ok=None):
    """One row of the README's table; `ok`: True PASS, False MISS, None no target."""
    with open(os.environ["BENCH_ROWS"], "a") as f:
        f.write(json.dumps({"measure": measure, "figure": figure, "target": target, "ok": ok}) + "\n")
PY
export DOCKER_HOST=$host BERTH_ACTIONS=$PWD/target/release/actions BERTH_CACHE=$work/cache
berth=$PWD/target/release/berth
docker_cli=$(command -v docker || true)

"$berth" run system.version >/dev/null # warm the cache and the index
# A loopback TCP port nothing listens on.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
hf() { hyperfine -N --style none --warmup 10 "$@" 2>/dev/null >/dev/null; }
# hfi NAME ROUNDS RUNS CMD...: whole-process comparisons in ROUNDS short hyperfine blocks of
# RUNS runs per command, the commands' order reversed every other block, so that a phase of
# this shared machine (another process, writeback) falls on every command alike rather than on
# whichever ran then; $work/NAME.json gets every run's time and the medians, commands in order.
# HFI_WARMUP (2) warm-up runs per command and block; HFI_PREPARE, a command run before each run.
hfi() {
    local name=$1 rounds=$2 runs=$3 i j
    shift 3
    local fwd=("$@") rev=() opts=(--warmup "${HFI_WARMUP:-2}")
    # A prepare command needs a shell (hyperfine's -N runs it without one).
    if [[ -n ${HFI_PREPARE:-} ]]; then opts+=(--prepare "$HFI_PREPARE"); else opts+=(-N); fi
    for ((j = $#; j > 0; j--)); do rev+=("${!j}"); done
    for ((i = 0; i < rounds; i++)); do
        if ((i % 2)); then set -- "${rev[@]}"; else set -- "${fwd[@]}"; fi
        hyperfine --style none "${opts[@]}" --runs "$runs" --export-json "$work/$name.$i.json" "$@" >/dev/null 2>&1
    done
    python3 - "$work" "$name" "$rounds" "${fwd[@]}" <<'PY'
import json, statistics, sys
w, name, rounds, cmds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
times = {c: [] for c in cmds}
for i in range(rounds):
    for r in json.load(open(f"{w}/{name}.{i}.json"))["results"]:
        times[r["command"]].extend(r["times"])
res = [{"command": c, "median": statistics.median(times[c]), "mean": statistics.mean(times[c]), "times": times[c]} for c in cmds]
json.dump({"results": res}, open(f"{w}/{name}.json", "w"))
PY
}
hfi ping 20 10 "$berth run system.ping" "curl -sf --unix-socket $sock http://docker/_ping"
if [[ -n $docker_cli ]]; then
    hfi version 10 10 "$berth run system.version" "$docker_cli -H $host version"
else
    hfi version 10 10 "$berth run system.version"
fi
# Cold: the twelve Rust families only (the Python and JS examples alone take ~30 s to compile;
# `berth install` precompiles them, measured below).
rust_actions=$work/rust-actions
mkdir -p "$rust_actions"
for f in "$BERTH_ACTIONS"/*.wasm; do
    case $(basename "$f") in hunt.wasm | posture.wasm) ;; *) cp "$f" "$rust_actions/" ;; esac
done
BERTH_ACTIONS=$rust_actions hyperfine -N --style none --warmup 2 --runs 15 --export-json "$work/cold.json" "$berth --no-cache run system.version" "$berth run system.version" >/dev/null 2>&1

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
from benchrow import row
def check(label, measure, a, b, op, target, unit="ms"):
    ratio = a / b
    ok = ratio <= target if op == "<=" else ratio >= target
    print(f"  {label:<52} {ratio:6.2f}x   target {op} {target}x   {'PASS' if ok else 'MISS'}")
    row(measure, f"{a:.2f} vs {b:.2f} {unit} = **{ratio:.2f}×**", f"{'≤' if op == '<=' else '≥'} {target}×", ok)
print("ratios")
check("berth system.ping / curl --unix-socket _ping", "`berth run system.ping` vs `curl --unix-socket …/_ping` (whole process, median)", ping[0][1], ping[1][1], "<=", 0.45)
if len(version) > 1:
    check("berth system.version / docker version", "`berth run system.version` vs `docker version`", version[0][1], version[1][1], "<=", 0.5)
check("cold (no cache) / cached system.version", "cold (`--no-cache`, every Rust family compiled) vs cached `system.version`", cold[0][1], cold[1][1], ">=", 15)
PY
# Export throughput and memory: a container holding a 1 GiB file, berth vs `docker export`.
if [[ -n $docker_cli ]]; then
    "$berth" run system.ping >/dev/null
    img=$(tests/bench-image.sh "$host")
    cid=$("$docker_cli" -H "$host" create --network none "$img" sh -c 'dd if=/dev/urandom of=/big bs=1048576 count=1024 2>/dev/null')
    "$docker_cli" -H "$host" start -a "$cid" >/dev/null
    # Each run starts with no file and no dirty pages, so writeback of the previous run's
    # gigabyte does not throttle the next one; the two commands alternate in short blocks
    # (hfi), so that a slow phase of the machine's disk falls on both alike.
    "$docker_cli" -H "$host" export -o "$work/docker.tar" "$cid"
    fresh="rm -f $work/docker.tar $work/berth.tar $work/bundle.tar; sync"
    HFI_WARMUP=0 HFI_PREPARE=$fresh hfi export 4 2 \
        "$docker_cli -H $host export -o $work/docker.tar $cid" \
        "$berth run container.export id=$cid --out $work/berth.tar"
    rss=$(/usr/bin/time -f %M "$berth" run container.export "id=$cid" --out "$work/berth.tar" 2>&1 >/dev/null | tail -n1)
    size=$(stat -c %s "$work/berth.tar")
    # The forensic bundle of the same container: the export plus everything else, in one tar.
    HFI_WARMUP=0 HFI_PREPARE=$fresh hfi bundle 4 2 \
        "$docker_cli -H $host export -o $work/docker.tar $cid" \
        "$berth run response.forensic-bundle container=$cid --out $work/bundle.tar"
    bundle_rss=$(/usr/bin/time -f %M "$berth" run response.forensic-bundle "container=$cid" --out "$work/bundle.tar" 2>&1 >/dev/null | tail -n1)
    python3 - "$work" "$rss" "$size" "$bundle_rss" <<'PY'
import json, sys
w, rss, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
(d, b) = [r["median"] for r in json.load(open(f"{w}/export.json"))["results"]]
print("container export, 1 GiB file")
print(f"  docker export -o FILE            {size / d / 2**20:8.1f} MiB/s  ({d:.2f} s)")
print(f"  berth container.export --out     {size / b / 2**20:8.1f} MiB/s  ({b:.2f} s)")
ok = d / b >= 0.9
print(f"  throughput berth / docker        {d / b:6.2f}x   target >= 0.9x   {'PASS' if ok else 'MISS'}")
print(f"  berth peak RSS                   {rss / 1024:6.1f} MiB  target <= 64 MiB   {'PASS' if rss <= 64 * 1024 else 'MISS'}")
from benchrow import row
row("`container.export` of a 1 GiB file vs `docker export -o` (throughput; peak RSS)", f"{b:.2f} vs {d:.2f} s = **{d / b:.2f}×**; {rss / 1024:.1f} MiB", "≥ 0.9×, ≤ 64 MiB", ok and rss <= 64 * 1024)
(d2, fb) = [r["median"] for r in json.load(open(f"{w}/bundle.json"))["results"]]
brss = int(sys.argv[4])
print("forensic bundle of the same container (export + inspect, logs, top, changes, stats, image, info, manifest)")
print(f"  docker export -o FILE            {d2:6.2f} s")
print(f"  berth response.forensic-bundle   {fb:6.2f} s   {fb / d2:5.2f}x docker export   target <= 1.2x   {'PASS' if fb / d2 <= 1.2 else 'MISS'}")
print(f"  berth peak RSS                   {brss / 1024:6.1f} MiB  target <= 64 MiB   {'PASS' if brss <= 64 * 1024 else 'MISS'}")
row("`response.forensic-bundle` of the same container vs `docker export -o` (time; peak RSS)", f"{fb:.2f} vs {d2:.2f} s = **{fb / d2:.2f}×**; {brss / 1024:.1f} MiB", "≤ 1.2×, ≤ 64 MiB", fb / d2 <= 1.2 and brss <= 64 * 1024)
PY
    "$docker_cli" -H "$host" rm -f "$cid" >/dev/null
fi

# Guest languages: the same engine call (GET /version) from a Rust, a Python and a JS action,
# whole process, cached; and the first run after `berth install`, which compiles nothing.
lang=$work/lang
mkdir -p "$lang/actions"
cp "$BERTH_ACTIONS/system.wasm" "$lang/actions/"
for c in py-probe js-probe; do
    BERTH_CACHE=$lang/cache BERTH_ACTIONS=$lang/actions "$berth" install "target/components/$c.wasm" >/dev/null
done
first=$( { /usr/bin/time -f %e env BERTH_CACHE=$lang/cache BERTH_ACTIONS=$lang/actions BERTH_LOG=berth=debug "$berth" run pyprobe.version >/dev/null; } 2>&1 )
BERTH_CACHE=$lang/cache BERTH_ACTIONS=$lang/actions hfi lang 10 10 \
    "$berth run system.version" "$berth run pyprobe.version" "$berth run jsprobe.version"
python3 - "$work" "$first" <<'PY'
import json, sys
w, first = sys.argv[1], sys.argv[2]
(r, p, j) = [x["median"] * 1e3 for x in json.load(open(f"{w}/lang.json"))["results"]]
print("guest languages: GET /version, whole process, cached (median ms)")
print(f"  Rust   system.version     {r:8.2f}")
print(f"  Python pyprobe.version    {p:8.2f}   {p / r:5.2f}x Rust   target <= 2x   {'PASS' if p / r <= 2 else 'MISS'}")
print(f"  JS     jsprobe.version    {j:8.2f}   {j / r:5.2f}x Rust")
cached = "source=Cached" in first and "source=Compiled" not in first
secs = first.strip().splitlines()[-1]
print(f"  first Python run after berth install: {float(secs) * 1e3:.0f} ms, component {'loaded precompiled' if cached else 'COMPILED'}   {'PASS' if cached else 'MISS'}")
from benchrow import row
row("Python `pyprobe.version` vs Rust `system.version` (whole process, cached; JS beside it)", f"{p:.1f} vs {r:.1f} ms = **{p / r:.2f}×** (JS {j / r:.2f}×)", "≤ 2×", p / r <= 2)
row("first run of a Python action after `berth install`", f"**{float(secs) * 1e3:.0f} ms**, {'loaded precompiled' if cached else 'compiled'}", "no compilation", cached)
PY

# Fan-out: a hunt over three engines with 100 containers each, against the slowest engine
# hunted alone (one list and 100 inspects per engine).
if [[ -n $docker_cli ]]; then
    img=$(tests/bench-image.sh "$host")
    fan_hosts=()
    for n in 1 2 3; do
        d=${engine_dir}-fan$n
        h=$(tests/engine.sh start "$d")
        fan_hosts+=("$h")
        tests/bench-image.sh "$h" >/dev/null
        have=$("$docker_cli" -H "$h" ps -aq --filter label=berth.bench=fan | wc -l)
        for i in $(seq $((have + 1)) 100); do
            "$docker_cli" -H "$h" create --network none -l berth.bench=fan -e "BENCH_TOKEN_$i=x" "$img" true >/dev/null
        done
    done
    trap 'for n in 1 2 3; do tests/engine.sh stop "${engine_dir}-fan$n"; done; rm -rf "$work"' EXIT
    "$berth" run response.hunt env='BENCH_*' all=true >/dev/null
    singles=()
    for h in "${fan_hosts[@]}"; do singles+=("$berth -H $h run response.hunt env=BENCH_* all=true"); done
    fan="$berth run response.hunt env=BENCH_* all=true --asset a=${fan_hosts[0]} --asset b=${fan_hosts[1]} --asset c=${fan_hosts[2]}"
    hf --runs 10 --export-json "$work/fan.json" "${singles[@]}" "$fan"
    # The floor this machine puts under the fan-out: here the three engines share berth's
    # cores, so one hunt over all three cannot take less than the CPU the engines and berth
    # spend on it, spread over every core (on a fleet each engine has its own host).
    engine_ticks() {
        local t=0 n p
        for n in 1 2 3; do
            p=$(cat "${engine_dir}-fan$n/docker.pid")
            t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
        done
        echo "$t"
    }
    t0=$(engine_ticks)
    berth_cpu=$({ /usr/bin/time -f "%U %S" bash -fc "for i in 1 2 3 4 5; do $fan >/dev/null; done"; } 2>&1 | tail -n1)
    t1=$(engine_ticks)
    python3 - "$work" "$((t1 - t0))" "$(getconf CLK_TCK)" "$berth_cpu" "$(nproc)" <<'PY'
import json, sys
r = [x["median"] * 1e3 for x in json.load(open(f"{sys.argv[1]}/fan.json"))["results"]]
ticks, hz, (u, s), cores = int(sys.argv[2]), int(sys.argv[3]), map(float, sys.argv[4].split()), int(sys.argv[5])
slowest = max(r[:3])
print("fan-out: response.hunt env=BENCH_* over 3 engines x 100 containers (median ms)")
print(f"  each engine alone                {r[0]:8.1f} {r[1]:8.1f} {r[2]:8.1f}")
print(f"  all three, one invocation        {r[3]:8.1f}   {r[3] / slowest:5.2f}x the slowest alone   target <= 1.5x   {'PASS' if r[3] / slowest <= 1.5 else 'MISS'}")
engines, berth = ticks * 1e3 / hz / 5, (u + s) * 1e3 / 5
floor = (engines + berth) / cores
print(f"  CPU per fan-out hunt: the three dockerds {engines:.0f} ms, berth {berth:.0f} ms; over {cores} cores the floor is")
print(f"  {floor:.0f} ms = {floor / slowest:.2f}x the slowest alone (engines alone: {engines / cores / slowest:.2f}x)")
from benchrow import row
row("`response.hunt` over 3 engines × 100 containers vs the slowest engine alone (three dockerds on this machine's cores)", f"{r[3]:.1f} vs {slowest:.1f} ms = **{r[3] / slowest:.2f}×**; the CPU floor {floor / slowest:.2f}×", "≤ 1.5×", r[3] / slowest <= 1.5)
PY
fi

echo "in process"
# floor.ping (tests/guests/floor): one engine call in a sandbox, no SDK, a constant answer.
floor_dir=$work/floor
mkdir -p "$floor_dir"
cp target/wasm32-wasip2/release/berth_test_floor.wasm "$floor_dir/floor.wasm"
rt_out=$(target/release/examples/bench_runtime "$BERTH_ACTIONS" "$host" "$floor_dir")
echo "$rt_out" | sed 's/^/  /'
python3 - "$rt_out" <<'PY'
import re, sys
from benchrow import row
m = re.search(r"instantiate \(pooled\)[^\n]*p50\s+([\d.]+) µs", sys.argv[1]) or re.search(r"pooled[^\n]*p50\s+([\d.]+) µs", sys.argv[1])
if m:
    row("pooled instantiate, fresh `Store` (in process)", f"p50 **{float(m.group(1)):.1f} µs**")
m = re.search(r"engine call ([\d.]+) µs\s+floor.ping ([\d.]+) µs\s+system.ping ([\d.]+) µs", sys.argv[1])
d, f, p = (float(x) for x in m.groups())
row("CPU per call in process, one call at a time: the engine call alone / `floor.ping` (that call in a sandbox: no SDK, a constant answer) / `system.ping`", f"{d:.0f} / {f:.0f} / **{p:.0f} µs**: the sandbox +{f - d:.0f} µs, the SDK +{p - f:.0f} µs")
PY
echo "berth serve (one tenant, pooling allocator)"
serve_out=$(target/release/examples/bench_serve "$BERTH_ACTIONS" "$host")
echo "$serve_out" | sed 's/^/  /'
python3 - "$serve_out" <<'PY'
import re, sys
m = re.search(r"durable job store \(SQLite\) per async job\s+p50\s+([\d.]+) µs\s+p99\s+([\d.]+)", sys.argv[1])
p50, p99 = float(m.group(1)), float(m.group(2))
ok = p50 <= 1000
print(f"  durable job store per async job                      p50 {p50:.0f} µs   target <= 1000 µs   {'PASS' if ok else 'MISS'}")
from benchrow import row
row("`berth serve` durable job store (SQLite): added per async job (count, record, result, poll; sync invocations never touch it)", f"p50 **{p50:.0f} µs**, p99 {p99:.0f} µs", "p50 ≤ 1 ms", ok)
PY
# Over mutual TLS: a second isolated dockerd on tcp://localhost with a CA, server and client
# certificates made here with openssl.
tls_dir=$work/tls
mkdir -p "$tls_dir"
(
    cd "$tls_dir"
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
    key ca-key.pem
    openssl req -x509 -new -key ca-key.pem -out ca.pem -days 2 -subj /CN=berth-bench-ca 2>/dev/null
    for who in server client; do
        key "$who-key.pem"
        openssl req -new -key "$who-key.pem" -out "$who.csr" -subj "/CN=$who" 2>/dev/null
    done
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -days 2 \
        -extfile <(printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n') 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out cert.pem -days 2 \
        -extfile <(printf 'extendedKeyUsage=clientAuth\n') 2>/dev/null
    cp client-key.pem key.pem
)
tls_port=$(free_port)
tls_engine_dir=${engine_dir}-tls
tests/engine.sh start "$tls_engine_dir" --host "tcp://127.0.0.1:$tls_port" --tlsverify \
    --tlscacert "$tls_dir/ca.pem" --tlscert "$tls_dir/server-cert.pem" --tlskey "$tls_dir/server-key.pem" >/dev/null
trap 'tests/engine.sh stop "$tls_engine_dir"; for n in 1 2 3; do tests/engine.sh stop "${engine_dir}-fan$n" >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT
tls_flags="--host tcp://localhost:$tls_port --tlsverify --tlscacert $tls_dir/ca.pem --tlscert $tls_dir/cert.pem --tlskey $tls_dir/key.pem"
"$berth" $tls_flags run system.version >/dev/null
if [[ -n $docker_cli ]]; then
    hfi tls 10 10 "$berth $tls_flags run system.version" "$docker_cli $tls_flags version"
    python3 - "$work" <<'PY'
import json, sys
(b, d) = [r["median"] * 1e3 for r in json.load(open(f"{sys.argv[1]}/tls.json"))["results"]]
print("over mutual TLS (median ms)")
print(f"  berth run system.version          {b:8.2f}")
print(f"  docker --tlsverify version        {d:8.2f}")
ok = b / d <= 0.6
print(f"  berth / docker                    {b / d:6.2f}x   target <= 0.6x   {'PASS' if ok else 'MISS'}")
from benchrow import row
row("over mutual TLS: `berth run system.version` vs `docker --tlsverify version`", f"{b:.1f} vs {d:.1f} ms = **{b / d:.2f}×**", "≤ 0.6×", ok)
PY
fi
echo "berth serve to a TLS engine (mutual TLS, pooled connections)"
tls_out=$(target/release/examples/bench_serve "$BERTH_ACTIONS" "tcp://localhost:$tls_port" "$tls_dir")
echo "$tls_out" | sed 's/^/  /'
python3 - "$serve_out" "$tls_out" <<'PY'
import re, sys
def added(text):
    m = re.search(r"added latency per invocation\s+p50\s+(-?[\d.]+)", text)
    return float(m.group(1))
u, t = added(sys.argv[1]), added(sys.argv[2])
ok = t <= 1.2 * u
print(f"  added p50 over TLS / over the unix socket   {t / u:6.2f}x   target <= 1.2x   {'PASS' if ok else 'MISS'}")
from benchrow import row
row("`berth serve` to a TLS engine: added p50 over the unix figure", f"{t:.0f} vs {u:.0f} µs = **{t / u:.2f}×**", "≤ 1.2×", ok)
PY
# berth serve under a real load generator, as a separate process: wrk against an engine that
# also listens on loopback TCP (GET /_ping), then against `berth serve` in front of the same
# engine (POST /v1/actions/system.ping); 32 connections for throughput, one for latency.
wrk_port=$(free_port)
serve_port=$(free_port)
tcp_engine_dir=${engine_dir}-tcp
tcp_host=$(tests/engine.sh start "$tcp_engine_dir" --host "tcp://127.0.0.1:$wrk_port")
trap 'kill "${serve_pid:-}" 2>/dev/null || true; tests/engine.sh stop "$tcp_engine_dir"; tests/engine.sh stop "$tls_engine_dir"; for n in 1 2 3; do tests/engine.sh stop "${engine_dir}-fan$n" >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT
wrk_dir=$work/wrk
mkdir -p "$wrk_dir/actions"
cp "$BERTH_ACTIONS/system.wasm" "$floor_dir/floor.wasm" "$wrk_dir/actions/"
cat >"$wrk_dir/serve.toml" <<TOML
[server]
listen = "127.0.0.1:$serve_port"
cache = "$wrk_dir/cache"
state_dir = "$wrk_dir/state"
max_concurrent = 1000
engine_requests_per_second = 0
engine_max_connections = 0
[[tenant]]
name = "bench"
token_sha256 = "$(printf bench | sha256sum | cut -d' ' -f1)"
engine = "$tcp_host"
allow = ["system.*", "floor.*"]
[tenant.limits]
concurrency = 1000
requests_per_minute = 100000000
TOML
# post_script FILE BODY: a wrk script that POSTs BODY (JSON) with the bench tenant's token.
post_script() {
    printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Authorization"] = "Bearer bench"\nwrk.headers["Content-Type"] = "application/json"\n' \
        "$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$2")" >"$1"
}
post_script "$wrk_dir/post.lua" '{}'
"$berth" serve --config "$wrk_dir/serve.toml" --actions "$wrk_dir/actions" 2>"$wrk_dir/serve.log" &
serve_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$serve_port/healthz" >/dev/null && break; sleep 0.1; done
curl -sf -X POST -H 'Authorization: Bearer bench' "http://127.0.0.1:$serve_port/v1/actions/system.ping" >/dev/null
wrk -t2 -c32 -d3s "http://127.0.0.1:$wrk_port/_ping" >/dev/null # warm both
wrk -t2 -c32 -d3s -s "$wrk_dir/post.lua" "http://127.0.0.1:$serve_port/v1/actions/system.ping" >/dev/null
# CPU each process spent per request (berth serve, dockerd, wrk itself): steadier than wall
# time on a shared machine. wrk_cpu NAME WRK-ARGS... writes NAME.txt and NAME.cpu (clock ticks).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
engine_pid=$(cat "$tcp_engine_dir/docker.pid")
wrk_cpu() {
    local name=$1 b0 d0
    shift
    b0=$(ticks "$serve_pid"); d0=$(ticks "$engine_pid")
    /usr/bin/time -f "%U %S" -o "$wrk_dir/$name.wrktime" wrk "$@" >"$wrk_dir/$name.txt"
    echo "$(( $(ticks "$serve_pid") - b0 )) $(( $(ticks "$engine_pid") - d0 )) $(awk '{printf "%d", ($1 + $2) * 100}' "$wrk_dir/$name.wrktime")" >"$wrk_dir/$name.cpu"
}
wrk_cpu engine32 -t2 -c32 -d10s "http://127.0.0.1:$wrk_port/_ping"
wrk_cpu berth32 -t2 -c32 -d10s -s "$wrk_dir/post.lua" "http://127.0.0.1:$serve_port/v1/actions/system.ping"
# The same with floor.ping: what the sandbox itself costs a served action.
wrk_cpu floor32 -t2 -c32 -d5s -s "$wrk_dir/post.lua" "http://127.0.0.1:$serve_port/v1/actions/floor.ping"
wrk -t1 -c1 -d10s --latency "http://127.0.0.1:$wrk_port/_ping" >"$wrk_dir/engine1.txt"
wrk -t1 -c1 -d10s --latency -s "$wrk_dir/post.lua" "http://127.0.0.1:$serve_port/v1/actions/system.ping" >"$wrk_dir/berth1.txt"
wrk -t1 -c1 -d5s --latency -s "$wrk_dir/post.lua" "http://127.0.0.1:$serve_port/v1/actions/floor.ping" >"$wrk_dir/floor1.txt"
# berth serve's own HTTP, with no engine call and no sandbox: what any served action pays
# before it does anything, so a floor under the added latency and a ceiling on throughput.
wrk_cpu healthz32 -t2 -c32 -d5s "http://127.0.0.1:$serve_port/healthz"
wrk -t1 -c1 -d5s --latency "http://127.0.0.1:$serve_port/healthz" >"$wrk_dir/healthz1.txt"
# berth serve's HTTP plus one engine call (`GET /readyz` pings the tenant's engine): what a
# served action costs with the sandbox taken out.
wrk_cpu readyz32 -t2 -c32 -d5s "http://127.0.0.1:$serve_port/readyz"
wrk -t1 -c1 -d5s --latency "http://127.0.0.1:$serve_port/readyz" >"$wrk_dir/readyz1.txt"
# Peak RSS of berth serve (its VmRSS, sampled every 20 ms) while 1,000 connections each keep a
# `system.events` of 2 s in flight: 1,000 sandboxes at once.
post_script "$wrk_dir/events.lua" '{"max_duration": 2}'
# status_kib PID FIELD: a KiB figure of /proc/PID/status (VmRSS, VmSize).
status_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
rss_before=$(status_kib "$serve_pid" VmRSS)
(
    peak=0
    while kill -0 "$serve_pid" 2>/dev/null && [[ ! -f $wrk_dir/rss.stop ]]; do
        r=$(status_kib "$serve_pid" VmRSS)
        ((r > peak)) && peak=$r && echo "$peak" >"$wrk_dir/rss.peak"
        sleep 0.02
    done
) &
rss_sampler=$!
(ulimit -n 4096 && wrk -t2 -c1000 -d5s --timeout 20s -s "$wrk_dir/events.lua" "http://127.0.0.1:$serve_port/v1/actions/system.events" >"$wrk_dir/events1000.txt")
touch "$wrk_dir/rss.stop"
wait "$rss_sampler" || true
pool_line=$(grep -m1 'instance pool' "$wrk_dir/serve.log" | sed 's/^berth: //')
python3 - "$wrk_dir" "$rss_before" "$(cat "$wrk_dir/rss.peak")" "$pool_line" <<'PY'
import re, sys
w = sys.argv[1]
def rps(n):
    t = open(f"{w}/{n}.txt").read()
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)), int(bad.group(1)) if bad else 0
def us(v, unit):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
def lat(n):
    t = open(f"{w}/{n}.txt").read()
    return {p: us(*re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", t).groups()) for p in ("50", "99")}
(e, _), (b, bad) = rps("engine32"), rps("berth32")
print("berth serve under wrk (separate processes; engine on loopback TCP)")
print(f"  engine GET /_ping, 32 connections                    {e:9.0f} req/s")
print(f"  berth serve POST system.ping, 32 connections         {b:9.0f} req/s   ({bad} non-2xx)")
ok = b / e >= 0.45 and bad == 0
print(f"  throughput berth serve / engine                      {b / e:6.2f}x   target >= 0.45x   {'PASS' if ok else 'MISS'}")
le, lb = lat("engine1"), lat("berth1")
a50, a99 = lb["50"] - le["50"], lb["99"] - le["99"]
print(f"  one connection: engine p50 {le['50']:.0f} µs p99 {le['99']:.0f} µs; berth serve p50 {lb['50']:.0f} µs p99 {lb['99']:.0f} µs")
print(f"  added latency                                        p50 {a50:.0f} µs   p99 {a99:.0f} µs   target p50 <= 150   {'PASS' if a50 <= 150 else 'MISS'}")
(h, _), lh = rps("healthz32"), lat("healthz1")
print(f"  berth serve's HTTP alone (GET /healthz: no engine call, no sandbox), the floor under both figures:")
print(f"    one connection p50 {lh['50']:.0f} µs p99 {lh['99']:.0f} µs; 32 connections {h:.0f} req/s = {h / e:.2f}x the engine's _ping")
from benchrow import row
row("`berth serve` under wrk, 32 connections: `system.ping` vs the engine's `_ping`", f"{b:.0f} vs {e:.0f} req/s = **{b / e:.2f}×** ({bad} errors)", "≥ 0.45×", ok)
lr, lf = lat("readyz1"), lat("floor1")
row("`berth serve` under wrk, one connection: latency added to `_ping` (and by `/readyz`, HTTP + one engine call, the floor; by `floor.ping`, that call in a sandbox)", f"p50 **{a50:.0f} µs**, p99 {a99:.0f} µs (`/readyz` p50 {lr['50'] - le['50']:.0f} µs, `floor.ping` p50 {lf['50'] - le['50']:.0f} µs)", "p50 ≤ 150 µs", a50 <= 150)
row("berth serve's HTTP alone (`GET /healthz`), one / 32 connections (the floor under both rows above)", f"p50 {lh['50']:.0f} µs / {h:.0f} req/s = {h / e:.2f}× the engine's `_ping`")
def cpu(n):
    # µs of CPU per request: berth serve, the engine, wrk (clock ticks of 10 ms).
    b, d, g = [int(x) for x in open(f"{w}/{n}.cpu").read().split()]
    reqs = int(re.search(r"(\d+) requests in", open(f"{w}/{n}.txt").read()).group(1))
    return [x * 10000 / reqs for x in (b, d, g)]
ce, cb, cf, ch, cr = cpu("engine32"), cpu("berth32"), cpu("floor32"), cpu("healthz32"), cpu("readyz32")
for label, c in (("engine GET /_ping", ce), ("berth serve system.ping", cb), ("berth serve floor.ping", cf), ("berth serve GET /healthz", ch), ("berth serve GET /readyz", cr)):
    print(f"  CPU per request, {label:<26} berth {c[0]:6.1f} µs   engine {c[1]:6.1f} µs   wrk {c[2]:6.1f} µs")
row("CPU per request under wrk, 32 connections (berth / engine / wrk)", f"`_ping` direct: – / {ce[1]:.0f} / {ce[2]:.0f} µs; served `system.ping`: **{cb[0]:.0f}** / {cb[1]:.0f} / {cb[2]:.0f} µs; `/readyz` (HTTP + one engine call): {cr[0]:.0f} / {cr[1]:.0f} / {cr[2]:.0f} µs; `/healthz`: {ch[0]:.0f} / – / {ch[2]:.0f} µs")
ok = cb[0] <= 2.5 * cr[0]
print(f"  berth CPU, served ping / HTTP + one engine call      {cb[0] / cr[0]:6.2f}x   target <= 2.5x   {'PASS' if ok else 'MISS'}")
row("berth's CPU per served `system.ping` vs per `/readyz` (its HTTP + one engine call, no sandbox)", f"{cb[0]:.0f} vs {cr[0]:.0f} µs = **{cb[0] / cr[0]:.2f}×**", "≤ 2.5×", ok)
print(f"  berth CPU, served floor.ping / HTTP + one engine call {cf[0] / cr[0]:6.2f}x   (the sandbox's floor)")
row("the same for `floor.ping` (one engine call in a sandbox: no SDK, a constant answer), the floor under the row above", f"{cf[0]:.0f} vs {cr[0]:.0f} µs = **{cf[0] / cr[0]:.2f}×**")
before, peak, pool = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
done = re.search(r"(\d+) requests in", open(f"{w}/events1000.txt").read()).group(1)
ok = peak <= 256 * 1024
print(f"  peak RSS, 1,000 concurrent system.events             {peak / 1024:6.1f} MiB ({before / 1024:.1f} MiB idle; {done} done)   target <= 256 MiB   {'PASS' if ok else 'MISS'}")
print(f"  {pool}")
row("`berth serve`'s peak RSS with 1,000 concurrent invocations (`system.events` of 2 s each; the pool as configured: " + pool + ")", f"**{peak / 1024:.0f} MiB** ({before / 1024:.0f} MiB idle)", "≤ 256 MiB", ok)
PY
kill "$serve_pid" 2>/dev/null || true

echo "berth serve fair share (two tenants, one flooding with 1000 CPU-bound invocations)"
fair=$(mktemp -d)
cp target/wasm32-wasip2/release/berth_action_system.wasm "$fair/system.wasm"
cp target/wasm32-wasip2/release/berth_test_hostile.wasm "$fair/test.wasm"
fair_out=$(target/release/examples/bench_fairness "$fair" "$host")
echo "$fair_out" | sed 's/^/  /'
rm -rf "$fair"
python3 - "$fair_out" <<'PY'
import re, sys
from benchrow import row
t = sys.argv[1]
i = float(re.search(r"idle\s+([\d.]+) ms", t).group(1))
b = float(re.search(r"in flight\s+([\d.]+) ms", t).group(1))
row("fair share: a quiet tenant's `system.ping` p50 while another keeps 1,000 CPU-bound invocations in flight, over idle", f"{b:.2f} vs {i:.2f} ms = **{b / i:.2f}×**", "≤ 2×", b / i <= 2)
PY

# The instance pool `berth serve` reserves with its default config (256 instances), read from
# the process's VmSize against a 39-bit host's 512 GiB.
echo "berth serve's default instance pool"
pool_dir=$work/pool
mkdir -p "$pool_dir/actions"
cp "$BERTH_ACTIONS/system.wasm" "$pool_dir/actions/"
pool_port=$(free_port)
printf '[server]\nlisten = "127.0.0.1:%s"\ncache = "%s/cache"\n[[tenant]]\nname = "p"\ntoken_sha256 = "%s"\nallow = ["system.*"]\n' \
    "$pool_port" "$pool_dir" "$(printf p | sha256sum | cut -d' ' -f1)" >"$pool_dir/serve.toml"
"$berth" serve --config "$pool_dir/serve.toml" --actions "$pool_dir/actions" 2>"$pool_dir/log" &
pool_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$pool_port/healthz" >/dev/null && break; sleep 0.1; done
vm_kib=$(status_kib "$pool_pid" VmSize)
kill "$pool_pid" 2>/dev/null || true
python3 - "$vm_kib" "$(head -n1 "$pool_dir/log")" <<'PY'
import sys
from benchrow import row
gib = int(sys.argv[1]) / 2**20
print(f"  {sys.argv[2]}")
print(f"  VmSize {gib:.1f} GiB   target <= 256 GiB   {'PASS' if gib <= 256 else 'MISS'}")
row("`berth serve`'s address space with the default pool (256 instances), VmSize", f"**{gib:.1f} GiB**", "≤ 256 GiB", gib <= 256)
PY

# The test build: `make test` records its wall time and the profiles wasmtime was built in.
if [[ -f target/make-test.json ]]; then
    python3 - target/make-test.json <<'PY'
import json, sys
from benchrow import row
t = json.load(open(sys.argv[1]))
m, s = divmod(int(t["seconds"]), 60)
print(f"make test: {m} min {s:02d} s; wasmtime built in {t['wasmtime_builds']} profile(s)")
row("the last `make test` on this machine, wall time (its builds included); builds of wasmtime in `target/`", f"**{m} min {s:02d} s**; {t['wasmtime_builds']}", "≤ 4 min warm; 1 build", t["seconds"] <= 240 and t["wasmtime_builds"] == 1)
PY
fi

# The README's table: this run's rows, between the bench markers.
python3 - "$BENCH_ROWS" README.md "$(nproc)" "$(date -u +%Y-%m-%d)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
verdict = {True: " (PASS)", False: " (MISS)", None: ""}
lines = [f"Measured by `make bench` on {sys.argv[4]} ({sys.argv[3]} cores, release build, `RUST_BACKTRACE` unset).", "",
         "| measure | figure | target |", "|---|---|---|"]
lines += [f"| {r['measure']} | {r['figure']} | {r['target']}{verdict[r['ok']] if r['target'] else ''} |" for r in rows]
path = sys.argv[2]
text = open(path).read()
start, end = "<!-- bench:start -->\n", "<!-- bench:end -->"
a, b = text.index(start) + len(start), text.index(end)
open(path, "w").write(text[:a] + "\n".join(lines) + "\n" + text[b:])
print(f"README.md: {len(rows)} rows written")
PY
