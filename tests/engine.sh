#!/usr/bin/env bash
# An isolated Docker engine for berth's tests, demos and benchmarks.
#
# It never touches the machine's own daemon: its own socket, data root, exec root, pidfile
# and containerd namespace, no bridge and no iptables rules.
#
#   tests/engine.sh ensure              install docker.io, busybox-static, docker-registry, podman,
#                                       openssh-server and postgresql if missing (root, Debian)
#   tests/engine.sh start [DIR] [ARGS]  start (or reuse) the engine in DIR; print its DOCKER_HOST;
#                                       ARGS go to dockerd (e.g. a TLS listener on tcp://127.0.0.1)
#   tests/engine.sh stop [DIR]          stop it and remove DIR
#   tests/engine.sh run [DIR] -- CMD    start, run CMD with BERTH_TEST_DOCKER_HOST set, stop;
#                                       Podman's Docker API too (DIR/podman), as BERTH_TEST_PODMAN_HOST
#   tests/engine.sh podman-start DIR    start (or reuse) an isolated `podman system service`; print its host
#   tests/engine.sh podman-stop DIR     stop it
#   tests/engine.sh pg-start DIR        start a private PostgreSQL cluster in DIR on a free loopback
#                                       port; print its URL (postgres://berth@127.0.0.1:PORT/postgres)
#   tests/engine.sh pg-stop DIR         stop it (immediately, as a crash would) and remove DIR
#
# DIR defaults to $BERTH_ENGINE_DIR or /tmp/berth-engine.
set -euo pipefail

cmd=${1:-}
shift || true

dir_arg() {
    if [[ $# -gt 0 && $1 != "--" ]]; then echo "$1"; else echo "${BERTH_ENGINE_DIR:-/tmp/berth-engine}"; fi
}

ensure() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    [[ -x /bin/busybox || -x /usr/bin/busybox ]] || missing+=(busybox-static)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    command -v podman >/dev/null 2>&1 || missing+=(podman)
    command -v sshd >/dev/null 2>&1 || [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
    pg_bin >/dev/null 2>&1 || missing+=(postgresql)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "engine.sh: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "engine.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ping_ok SOCKET: the engine on SOCKET answers /_ping.
ping_ok() {
    curl -sf --max-time 2 --unix-socket "$1" http://docker/_ping >/dev/null 2>&1
}

# wait_up SOCKET LOG NAME: print the engine's address once it answers (30 s at most), or
# show its log and fail.
wait_up() {
    for _ in $(seq 1 300); do
        if ping_ok "$1"; then
            echo "unix://$1"
            return 0
        fi
        sleep 0.1
    done
    echo "engine.sh: $3 did not come up within 30s; its log:" >&2
    tail -n 30 "$2" >&2 || true
    exit 1
}

# unmount_under DIR: whatever an engine left mounted below DIR, deepest first.
unmount_under() {
    awk -v d="$1" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

start() {
    local dir=$1
    shift
    ensure
    if [[ -S $dir/docker.sock ]] && ping_ok "$dir/docker.sock"; then
        echo "unix://$dir/docker.sock"
        return 0
    fi
    mkdir -p "$dir/data" "$dir/exec"
    # A stale pidfile from a killed run would stop dockerd from starting.
    rm -f "$dir/docker.pid" "$dir/docker.sock"
    setsid dockerd \
        --host "unix://$dir/docker.sock" \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --pidfile "$dir/docker.pid" \
        --containerd-namespace berth-test \
        --containerd-plugins-namespace berth-test-plugins \
        --bridge=none \
        --iptables=false \
        --ip-masq=false \
        --userland-proxy=false \
        --log-level=warn \
        "$@" \
        >"$dir/dockerd.log" 2>&1 </dev/null &
    wait_up "$dir/docker.sock" "$dir/dockerd.log" dockerd
}

stop() {
    local dir=$1
    [[ -d $dir ]] || return 0
    if [[ -f $dir/docker.pid ]]; then
        local pid
        pid=$(cat "$dir/docker.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 200); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    unmount_under "$dir"
    rm -rf "$dir"
}

# Podman's Docker-compatible API as a second real engine: its own storage, run root and
# config (lower ulimits than Podman's defaults, which this machine's limits refuse).
podman_start() {
    local dir=$1
    shift
    ensure
    if [[ -S $dir/podman.sock ]] && ping_ok "$dir/podman.sock"; then
        echo "unix://$dir/podman.sock"
        return 0
    fi
    mkdir -p "$dir"
    cat >"$dir/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=512:512"]
pids_limit = 1024
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
    CONTAINERS_CONF=$dir/containers.conf setsid podman \
        --root "$dir/root" --runroot "$dir/run" --storage-driver vfs \
        system service --time=0 "unix://$dir/podman.sock" \
        >"$dir/podman.log" 2>&1 </dev/null &
    echo $! >"$dir/podman.pid"
    wait_up "$dir/podman.sock" "$dir/podman.log" "podman system service"
}

podman_stop() {
    local dir=$1
    [[ -d $dir ]] || return 0
    if [[ -f $dir/podman.pid ]]; then
        kill -TERM "$(cat "$dir/podman.pid")" 2>/dev/null || true
        sleep 0.5
    fi
    # Containers Podman left running (conmon outlives the service).
    CONTAINERS_CONF=$dir/containers.conf podman --root "$dir/root" --runroot "$dir/run" --storage-driver vfs \
        rm -af -t 0 >/dev/null 2>&1 || true
    unmount_under "$dir"
    rm -rf "$dir"
}

# pg_bin: the directory of Debian's PostgreSQL server binaries (initdb, pg_ctl).
pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb ]] && { echo "$d"; return 0; }
    done
    return 1
}

# as_pg CMD...: run CMD as the postgres user when root (initdb refuses root), else as is.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A private PostgreSQL cluster for the job-store tests: trust auth on loopback only, its
# socket in DIR, fsync off (a test cluster).
pg_start() {
    local dir=$1 bin port data
    bin=$(pg_bin) || { ensure; bin=$(pg_bin); }
    mkdir -p "$dir"
    # The cluster's own directory, where the postgres user can reach it (DIR may be private).
    data=$(mktemp -d /tmp/berth-pg.XXXXXX)
    echo "$data" >"$dir/pgdir"
    [[ $(id -u) -eq 0 ]] && chown postgres "$data"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$data/data" -U berth -A trust --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg "$bin/pg_ctl" -D "$data/data" -l "$data/pg.log" -w -t 30 \
        -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50" start >/dev/null \
        || { cat "$data/pg.log" >&2; exit 1; }
    echo "postgres://berth@127.0.0.1:$port/postgres"
}

pg_stop() {
    local dir=$1 bin data
    [[ -f $dir/pgdir ]] || return 0
    data=$(cat "$dir/pgdir")
    bin=$(pg_bin) || return 0
    [[ -f $data/data/postmaster.pid ]] && as_pg "$bin/pg_ctl" -D "$data/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$data" "$dir/pgdir"
}

case $cmd in
    ensure) ensure ;;
    start)
        dir=$(dir_arg "$@")
        [[ $# -gt 0 ]] && shift
        start "$dir" "$@"
        ;;
    stop) stop "$(dir_arg "$@")" ;;
    podman-start) podman_start "$(dir_arg "$@")" ;;
    podman-stop) podman_stop "$(dir_arg "$@")" ;;
    pg-start) pg_start "$1" ;;
    pg-stop) pg_stop "$1" ;;
    run)
        dir=$(dir_arg "$@")
        [[ $# -gt 0 && $1 != "--" ]] && shift
        [[ ${1:-} == "--" ]] && shift
        [[ $# -gt 0 ]] || { echo "usage: engine.sh run [DIR] -- CMD..." >&2; exit 2; }
        host=$(start "$dir")
        trap 'stop "$dir"' EXIT
        podman_host=$(podman_start "$dir/podman")
        trap 'podman_stop "$dir/podman"; stop "$dir"' EXIT
        # One compile cache for every test binary of the run (or the caller's, shared by runs).
        BERTH_TEST_DOCKER_HOST=$host BERTH_TEST_PODMAN_HOST=$podman_host BERTH_TEST_CACHE=${BERTH_TEST_CACHE:-$dir/cache} "$@"
        ;;
    *)
        sed -n '2,19p' "$0" >&2
        exit 2
        ;;
esac
