# Sourced by compare.sh, low_load.sh and syscalls.sh: the three servers they
# compare, started the same way, and how their CPU is read.
#
#   percore  target/release/percore (PERCORE_BIN)
#   percore_coop  the same binary with IO_URING_DEFER_TASKRUN=0: its main
#            rings set up as before DEFER_TASKRUN (COOP_TASKRUN), to compare
#   percore_poll  the same binary with IO_URING_RECV_MULTISHOT=0: reads with
#            a `recv` and a poll instead of multishot receives, to compare
#   percore_send  the same binary with IO_URING_RING_SEND=0: writes each
#            batch of responses with a `send` instead of a ring send
#   percore_alt  another build of percore (PERCORE_ALT_BIN: a branch, a
#            profile-guided build), started as percore is: two builds
#            alternated in one invocation
#   nginx    Debian `nginx-light`, a generated config: the same workers,
#            pinned the same way, each on its own `reuseport` socket,
#            `access_log off`, answering percore's exact body for
#            /api/data/client-50 from memory (`return 200 '<body>'`), or from
#            a file with sendfile when NGINX_MODE=file
#   floor    target/release/examples/floor (FLOOR_BIN): the least a server
#            can do per request on io_uring (benches/floor/main.rs), answering
#            percore's exact head and body
#
# Worker layouts ("set-ups"): a = one worker pinned to core 0 (the server
# under `taskset -c 0`); anything else = WORKERS (default 2) workers, one per
# core. Before use: set `tmp` to a scratch dir (mode 755: nginx workers read
# it) and call `fetch_body` once.
# shellcheck shell=bash

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
PERCORE_BIN="${PERCORE_BIN:-$target/release/percore}"
FLOOR_BIN="${FLOOR_BIN:-$target/release/examples/floor}"
PERCORE_ALT_BIN="${PERCORE_ALT_BIN:-}"
NGINX_MODE="${NGINX_MODE:-return}"
WORKERS="${WORKERS:-2}"
CLK_TCK="$(getconf CLK_TCK)"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

[[ "$NGINX_MODE" == return || "$NGINX_MODE" == file ]] || die "NGINX_MODE must be return or file"

# Checks that each server named in $1 (a word list) can be started.
need_servers() { # "percore nginx floor"
    local s
    for s in $1; do
        case "$s" in
            percore|percore_coop|percore_poll|percore_send) [[ -x "$PERCORE_BIN" ]] || die "$PERCORE_BIN not found: cargo build --release" ;;
            percore_alt) [[ -n "$PERCORE_ALT_BIN" && -x "$PERCORE_ALT_BIN" ]] \
                || die "percore_alt needs PERCORE_ALT_BIN, another build of percore" ;;
            floor) [[ -x "$FLOOR_BIN" ]] \
                || die "$FLOOR_BIN not found: cargo build --release --example floor" ;;
            nginx)
                NGINX="$(command -v nginx || true)"
                [[ -z "$NGINX" && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
                [[ -n "$NGINX" ]] || die "nginx not found: apt-get install nginx-light" ;;
            *) die "unknown server '$s' (percore, nginx, floor)" ;;
        esac
    done
    # percore serves the body the others answer with.
    [[ -x "$PERCORE_BIN" ]] || die "$PERCORE_BIN not found: cargo build --release"
    command -v curl >/dev/null || die "curl not found"
    command -v taskset >/dev/null || die "taskset not found (util-linux)"
}

# Runs this script and everything it starts at nice NICE (root only), so
# that builds running alongside barely share the cores. With autogroup
# scheduling (kernel.sched_autogroup_enabled = 1, the default on many
# distributions) nice values only order the processes of one session against
# each other: another session's build still gets an equal share. So the
# session's autogroup is set to NICE as well, and restored by
# `restore_priority` (call it on exit).
autogroup_nice_before=""
prioritise() {
    (( EUID == 0 && NICE != 0 )) || return 0
    renice -n "$NICE" -p $$ >/dev/null
    if [[ -w /proc/$$/autogroup ]]; then
        autogroup_nice_before="$(sed -n 's/.* nice \(-\{0,1\}[0-9]*\)$/\1/p' /proc/$$/autogroup)"
        echo "$NICE" 2>/dev/null >"/proc/$$/autogroup" || autogroup_nice_before=""
    fi
}
restore_priority() {
    [[ -n "$autogroup_nice_before" ]] || return 0
    echo "$autogroup_nice_before" 2>/dev/null >"/proc/$$/autogroup" || true
}

server_pid=""
stop_server() {
    [[ -n "$server_pid" ]] || return 0
    # nginx's master takes its workers down with it on SIGTERM.
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# A TCP port nobody listens on (checked with ss), outside 3900-3999.
# A port below the kernel's ephemeral range (net.ipv4.ip_local_port_range,
# 32768 by default), so a load client's own connections cannot hold it, and
# used by no socket at all, listening or not.
free_port() {
    local p low
    low="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
    (( low > 12000 )) || low=32768
    while :; do
        p=$(( 10000 + RANDOM % (low - 10000) ))
        ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

# Up to 30 s: on a machine loaded with builds a server can take seconds to start.
wait_port() { # port
    for _ in $(seq 600); do
        curl -s -o /dev/null "http://127.0.0.1:$1/api/data/client-0" && return 0
        sleep 0.05
    done
    # The scratch dir goes away on exit: show the servers' logs now.
    tail -n 20 "${tmp:?}"/*.log >&2 2>/dev/null || true
    die "server on port $1 did not come up"
}

# utime+stime, µs, of a process (all its threads) and its children (nginx's
# workers), from /proc/<pid>/stat.
cpu_us() { # pid
    local pids ticks=0 f p
    pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
    for p in $pids; do
        [[ -r /proc/$p/stat ]] || continue
        # Fields 14 and 15; the command (field 2) may hold spaces: cut after ')'.
        f="$(sed 's/.*) //' "/proc/$p/stat")"
        ticks=$(( ticks + $(awk '{print $12 + $13}' <<<"$f") ))
    done
    echo $(( ticks * 1000000 / CLK_TCK ))
}

# Every pid of the running server (nginx: master and workers).
server_pids() {
    echo "$server_pid $(pgrep -P "$server_pid" | tr '\n' ' ')"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Machine-wide CPU from /proc/stat, µs: "process_time irq_time idle_time"
# (user+nice+system, irq+softirq, idle+iowait). %.0f: mawk's %d stops at 2^31.
machine_cpu() {
    awk -v hz="$CLK_TCK" '/^cpu / {printf "%.0f %.0f %.0f\n", ($2 + $3 + $4) * 1e6 / hz,
        ($7 + $8) * 1e6 / hz, ($5 + $6) * 1e6 / hz}' /proc/stat
}

# Worker count and pinning prefix of a set-up: "workers pin...".
layout() { # setup
    if [[ "$1" == a ]]; then echo "1 taskset -c 0"; else echo "$WORKERS"; fi
}

start_percore() { # setup port [IO_URING_DEFER_TASKRUN [IO_URING_RECV_MULTISHOT [IO_URING_RING_SEND]]]
    local workers pin
    read -r workers pin <<<"$(layout "$1")"
    # shellcheck disable=SC2086  # $pin is a word list on purpose
    HOST=127.0.0.1 PORT="$2" WORKERS="$workers" RUST_LOG=warn \
        IO_URING_DEFER_TASKRUN="${3:-1}" IO_URING_RECV_MULTISHOT="${4:-1}" \
        IO_URING_RING_SEND="${5:-1}" \
        $pin "$PERCORE_BIN" >"$tmp/percore.log" 2>&1 &
    server_pid=$!
    wait_port "$2"
}

start_percore_coop() { # setup port
    start_percore "$1" "$2" 0
}

start_percore_poll() { # setup port
    start_percore "$1" "$2" 1 0
}

start_percore_send() { # setup port
    start_percore "$1" "$2" 1 1 0
}

start_percore_alt() { # setup port
    local main_bin="$PERCORE_BIN"
    PERCORE_BIN="$PERCORE_ALT_BIN"
    start_percore "$1" "$2"
    PERCORE_BIN="$main_bin"
}

start_floor() { # setup port
    local workers pin
    read -r workers pin <<<"$(layout "$1")"
    # shellcheck disable=SC2086
    HOST=127.0.0.1 PORT="$2" WORKERS="$workers" BODY_FILE="$tmp/body.json" \
        $pin "$FLOOR_BIN" >"$tmp/floor.log" 2>&1 &
    server_pid=$!
    wait_port "$2"
}

start_nginx() { # setup port
    local workers pin affinity="" i
    read -r workers pin <<<"$(layout "$1")"
    # worker_cpu_affinity: worker i on the i-th CPU (01, 10, 100, ...).
    for (( i = 0; i < workers; i++ )); do
        affinity+=" 1$(printf '%*s' "$i" '' | tr ' ' 0)"
    done
    mkdir -p "$tmp/www" "$tmp/nginx"
    local location_body file_settings=""
    if [[ "$NGINX_MODE" == return ]]; then
        # The body inlined in the config: no file access at all. The JSON
        # holds no single quote and no '$', so it is a literal nginx string.
        location_body="            return 200 '$(cat "$tmp/body.json")';"
    else
        location_body="            try_files /body.json =404;"
        # Body from the page cache with one sendfile; descriptors kept open.
        file_settings="sendfile on; open_file_cache max=16 inactive=60s; open_file_cache_valid 3600s;"
    fi
    cat >"$tmp/nginx/nginx.conf" <<EOF
# Generated by benches/peers.sh: a fixed JSON body, tuned for throughput.
worker_processes $workers;
worker_cpu_affinity$affinity;
daemon off;
master_process on;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
worker_rlimit_nofile 20000;
events {
    worker_connections 16384;
    use epoll;
}
http {
    access_log off;
    default_type application/json;
    keepalive_requests 100000000;
    keepalive_timeout 65s;
    $file_settings
    etag off;
    server_tokens off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$2 backlog=4096 reuseport;
        root $tmp/www;
        location /api/data/ {
$location_body
        }
    }
}
EOF
    cp "$tmp/body.json" "$tmp/www/body.json"
    # shellcheck disable=SC2086
    $pin "$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.log" 2>&1 &
    server_pid=$!
    wait_port "$2"
}

# The body every server answers with: percore's own for client-50.
fetch_body() {
    local port
    port="$(free_port)"
    start_percore b "$port"
    curl -s "http://127.0.0.1:$port/api/data/client-50" >"$tmp/body.json"
    stop_server
    [[ -s "$tmp/body.json" ]] || die "could not fetch a body from percore"
    if grep -q "[\$']" "$tmp/body.json"; then die "body holds ' or \$: cannot inline it in nginx.conf"; fi
}
