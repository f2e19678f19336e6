#!/usr/bin/env bash
# percore against nginx, same workers, same load, alternating, in one run.
#
# nginx (Debian `nginx-light`) serves a fixed body: the exact bytes percore
# answers for /api/data/client-50 (~605 bytes), by default from memory
# (`return 200 '<body>'`, its fastest fixed-response configuration), from a
# generated config with the same number of workers, pinned like percore's
# shards, each worker on its own `reuseport` socket as percore's shards are.
# Both are driven by the same load generators, one server at a time:
#
#   wrk          100 connections, a Lua script cycling over 100 client ids
#                (/api/data/client-<n>);
#   percore-load `percore-load max` (closed loop, 100 connections, 100 ids;
#                its default epoll engine, or PERCORE_LOAD_ENGINE=glommio),
#                if target/release/percore-load exists; skipped otherwise.
#
# Set-ups:
#   a  one worker pinned to core 0 (percore WORKERS=1 under `taskset -c 0`;
#      nginx worker_processes 1, worker_cpu_affinity 01), load on core 1;
#   b  two workers (one per core) sharing both cores with the load;
#   c  as b, pipelined: 16 requests per round trip (TechEmpower plaintext
#      style; wrk only: percore-load does not pipeline).
#
# Printed per set-up and load generator: requests/s, p99 latency (ms) and
# server CPU µs per request (utime+stime of every server process from
# /proc/<pid>/stat, delta over the measured run, / requests), side by side,
# with the ratio percore / nginx. Errors (non-2xx, socket errors) are shown.
#
# Usage:  cargo build --release && benches/compare.sh
# Env:    DURATION=10       measured seconds per run
#         WARMUP=3          warm-up seconds before each measured run (not counted)
#         ROUNDS=1          nginx/percore alternations per set-up (averaged)
#         SETUPS="a b c"    which set-ups
#         LOADERS="wrk percore-load"
#         NICE=-19          run servers and load at this nice value (root only)
#                           so that builds running alongside barely share
#                           the cores; NICE=0 to disable
#         IDLE_MIN=0        if > 0, before each run, wait (≤ 60 s) until the machine
#                           was ≥ this % idle for a second (other builds and
#                           tests share this machine); 0: don't wait
#         OTHER_MAX=15      a run during which processes other than the server
#                           and the load used more than this % of the machine
#                           is repeated (up to RETRIES=1 times) and flagged
#         NGINX_MODE=return return: `return 200 '<body>'` from memory (default);
#                           file: serve body.json (sendfile, open_file_cache),
#                           the mode of the README's earlier history rows
#         PERCORE_BIN, PERCORE_LOAD_BIN   binaries (default target/release/…)
#         PERCORE_LOAD_ENGINE=epoll       percore-load max's engine (epoll|glommio)
#         RESULTS=          also keep the raw TSV here
# Needs: nginx, wrk, curl, taskset. Installs nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
PERCORE_BIN="${PERCORE_BIN:-$target/release/percore}"
PERCORE_LOAD_BIN="${PERCORE_LOAD_BIN:-$target/release/percore-load}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-3}"
ROUNDS="${ROUNDS:-1}"
SETUPS="${SETUPS:-a b c}"
LOADERS="${LOADERS:-wrk percore-load}"
IDLE_MIN="${IDLE_MIN:-0}"
OTHER_MAX="${OTHER_MAX:-15}"
RETRIES="${RETRIES:-1}"
NGINX_MODE="${NGINX_MODE:-return}"
PERCORE_LOAD_ENGINE="${PERCORE_LOAD_ENGINE:-epoll}"
CONNECTIONS=100
IDS=100
PIPELINE=16

die() { echo "compare.sh: $*" >&2; exit 1; }
[[ "$NGINX_MODE" == return || "$NGINX_MODE" == file ]] || die "NGINX_MODE must be return or file"

# --- prerequisites ---------------------------------------------------------
NGINX="$(command -v nginx || true)"
[[ -z "$NGINX" && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
[[ -n "$NGINX" ]] || die "nginx not found: apt-get install nginx-light"
command -v wrk >/dev/null || die "wrk not found: apt-get install wrk"
command -v curl >/dev/null || die "curl not found"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
[[ -x "$PERCORE_BIN" ]] || die "$PERCORE_BIN not found: cargo build --release"
have_load=0
if [[ " $LOADERS " == *" percore-load "* ]]; then
    if [[ -x "$PERCORE_LOAD_BIN" ]] && "$PERCORE_LOAD_BIN" max --help >/dev/null 2>&1; then
        have_load=1
    else
        echo "note: $PERCORE_LOAD_BIN missing or without 'max': percore-load runs skipped" >&2
    fi
fi
(( $(nproc) >= 2 )) || die "needs 2 cores (server on core 0, load on core 1 in set-up a)"
CLK_TCK="$(getconf CLK_TCK)"
# Everything started from here on inherits the priority: the measured
# processes win the cores over whatever else this machine is running.
NICE="${NICE:--19}"
if (( EUID == 0 && NICE != 0 )); then
    renice -n "$NICE" -p $$ >/dev/null
fi

# --- scratch dir and cleanup -----------------------------------------------
tmp="$(mktemp -d /tmp/percore-compare.XXXXXX)"
# nginx workers run as an unprivileged user: they must be able to read the body.
chmod 755 "$tmp"
server_pid=""
server_kind=""
stop_server() {
    [[ -n "$server_pid" ]] || return 0
    if [[ "$server_kind" == nginx ]]; then
        # The master takes its workers down with it on SIGQUIT/SIGTERM.
        kill -TERM "$server_pid" 2>/dev/null || true
    else
        kill -TERM "$server_pid" 2>/dev/null || true
    fi
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
cleanup() {
    stop_server
    [[ -n "${RESULTS:-}" && -f "$tmp/results.tsv" ]] && cp "$tmp/results.tsv" "$RESULTS"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port nobody listens on (checked with ss).
free_port() {
    local p
    while :; do
        p=$(( 20000 + RANDOM % 20000 ))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

wait_port() { # port
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$1/api/data/client-0" && return 0
        sleep 0.05
    done
    die "server on port $1 did not come up (see $tmp/*.log)"
}

# utime+stime, µs, summed over a process and its children (nginx workers).
cpu_us() { # pid
    local pids ticks=0 f
    pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
    for p in $pids; do
        [[ -r /proc/$p/stat ]] || continue
        # Fields 14 and 15; the command (field 2) may hold spaces: cut after ')'.
        f="$(sed 's/.*) //' "/proc/$p/stat")"
        ticks=$(( ticks + $(awk '{print $12 + $13}' <<<"$f") ))
    done
    echo $(( ticks * 1000000 / CLK_TCK ))
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Machine-wide CPU from /proc/stat, µs: "process_time irq_time idle_time"
# (user+nice+system, irq+softirq, idle+iowait). /proc/stat shows softirq
# apart, but a process's utime+stime does include the softirq work (loopback
# TCP) done on its CPU while it runs, so "other" below counts only
# process time. %.0f, not %d: mawk's %d stops at 2^31.
machine_cpu() {
    awk -v hz="$CLK_TCK" '/^cpu / {printf "%.0f %.0f %.0f\n", ($2 + $3 + $4) * 1e6 / hz,
        ($7 + $8) * 1e6 / hz, ($5 + $6) * 1e6 / hz}' /proc/stat
}

# Waits until the machine was ≥ IDLE_MIN % idle over one second.
wait_idle() {
    (( IDLE_MIN > 0 )) || return 0
    local a b idle
    for _ in $(seq 60); do
        a="$(machine_cpu)"; sleep 1; b="$(machine_cpu)"
        idle="$(awk -v a="$a" -v b="$b" 'BEGIN {split(a, x, " "); split(b, y, " ");
            busy = y[1] - x[1] + y[2] - x[2]; idle = y[3] - x[3];
            printf "%d", 100 * idle / (busy + idle)}')"
        (( idle >= IDLE_MIN )) && return 0
    done
    echo "note: machine only ${idle}% idle (IDLE_MIN=$IDLE_MIN); measuring anyway" >&2
}

# CPU time of this shell's waited-for children (and theirs), µs, into the
# variable named $1. `times` must run in this shell, not in a $(...) subshell
# (which has children of its own), hence the file.
children_cpu_us() {
    times >"$tmp/times"
    printf -v "$1" '%s' "$(awk 'NR == 2 {t = 0; for (i = 1; i <= 2; i++) {
        split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }
        printf "%.0f", t * 1e6}' "$tmp/times")"
}

# --- servers ----------------------------------------------------------------
start_percore() { # setup port
    local workers=2 pin=""
    [[ "$1" == a ]] && { workers=1; pin="taskset -c 0"; }
    # shellcheck disable=SC2086  # $pin is a word list on purpose
    HOST=127.0.0.1 PORT="$2" WORKERS="$workers" RUST_LOG=warn \
        $pin "$PERCORE_BIN" >"$tmp/percore.log" 2>&1 &
    server_pid=$!
    server_kind=percore
    wait_port "$2"
}

start_nginx() { # setup port
    local workers=2 affinity="01 10" pin=""
    [[ "$1" == a ]] && { workers=1; affinity="01"; pin="taskset -c 0"; }
    mkdir -p "$tmp/www" "$tmp/nginx"
    local location_body
    if [[ "$NGINX_MODE" == return ]]; then
        # The body inlined in the config: no file access at all. The JSON
        # holds no single quote, so it fits a single-quoted nginx string.
        location_body="            return 200 '$(cat "$tmp/body.json")';"
    else
        location_body="            try_files /body.json =404;"
    fi
    cat >"$tmp/nginx/nginx.conf" <<EOF
# Generated by benches/compare.sh: a fixed JSON body, tuned for throughput.
worker_processes $workers;
worker_cpu_affinity $affinity;
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
    # Body from the page cache with one sendfile; descriptors kept open.
    sendfile on;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 3600s;
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
    server_kind=nginx
    wait_port "$2"
}

# --- load -------------------------------------------------------------------
# wrk: each thread cycles over the ids from its own offset; `pipeline` > 1
# sends that many requests per write and waits for as many responses.
write_wrk_script() { # file pipeline
    cat >"$1" <<EOF
local ids, depth = $IDS, $2
local counter = 1
local next_id = 0
function setup(thread)
    thread:set("offset", counter * 37)
    counter = counter + 1
end
function init(args)
    next_id = (offset or 0) % ids
end
function request()
    local parts = {}
    for i = 1, depth do
        parts[i] = wrk.format("GET", "/api/data/client-" .. next_id)
        next_id = (next_id + 1) % ids
    end
    return table.concat(parts)
end
EOF
}
write_wrk_script "$tmp/cycle.lua" 1
write_wrk_script "$tmp/pipeline.lua" "$PIPELINE"

# wrk latency like "1.23ms", "456.00us", "1.02s" -> ms
to_ms() {
    awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}' <<<"$1"
}

# Runs one load for $1 seconds against port $2; prints "requests p99_ms errors".
run_wrk() { # seconds port setup
    local threads=2 pin="" script="$tmp/cycle.lua" out
    [[ "$3" == a ]] && { threads=1; pin="taskset -c 1"; }
    [[ "$3" == c ]] && script="$tmp/pipeline.lua"
    # shellcheck disable=SC2086
    out="$($pin wrk -t"$threads" -c"$CONNECTIONS" -d"${1}s" --latency -s "$script" \
        "http://127.0.0.1:$2")"
    echo "$out" >>"$tmp/wrk.log"
    local requests p99 non2xx sockerr
    requests="$(awk '/requests in/ {print $1}' <<<"$out")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
    non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
    sockerr="$(awk -F'[ ,]+' '/Socket errors/ {print $5 + $7 + $9 + $11}' <<<"$out")"
    echo "$requests $p99 $(( ${non2xx:-0} + ${sockerr:-0} ))"
}

run_percore_load() { # seconds port setup
    local threads=2 pin="" json="$tmp/load.json"
    [[ "$3" == a ]] && { threads=1; pin="taskset -c 1"; }
    rm -f "$json"
    # Exit code 99 means "a criterion failed" (e.g. its default p99 bound):
    # the figures are still what we want.
    # shellcheck disable=SC2086
    $pin "$PERCORE_LOAD_BIN" max --engine "$PERCORE_LOAD_ENGINE" \
        --connections "$CONNECTIONS" --ids "$IDS" --duration "${1}s" --threads "$threads" --url "http://127.0.0.1:$2" \
        --no-server-metrics --json "$json" >>"$tmp/percore-load.log" 2>&1 || true
    [[ -s "$json" ]] || die "percore-load wrote no report (see $tmp/percore-load.log)"
    # The report is pretty-printed JSON: one "key": value per line.
    local requests p99 errors
    requests="$(sed -n 's/^ *"requests": \([0-9]*\).*/\1/p' "$json" | head -1)"
    p99="$(sed -n '/"latency_ms"/,/}/s/^ *"p99": \([0-9.]*\).*/\1/p' "$json" | head -1)"
    errors="$(sed -n 's/^ *"errors": \([0-9]*\),*$/\1/p' "$json" | head -1)"
    echo "$requests $p99 ${errors:-0}"
}

# One measured run: server up, warm-up, measure, server down; appends a row.
# Repeated (up to RETRIES times) if other processes took more than
# OTHER_MAX % of the machine during it.
measure() { # setup loader server round
    local setup=$1 loader=$2 server=$3 round=$4 port before after r try
    local run="run_${loader//-/_}"
    for try in $(seq 0 "$RETRIES"); do
        wait_idle
        port="$(free_port)"
        "start_$server" "$setup" "$port"
        "$run" "$WARMUP" "$port" "$setup" >/dev/null
        local load_at_start m0 m1 l0 l1 t0 t1
        load_at_start="$(loadavg)"
        before="$(cpu_us "$server_pid")"
        m0="$(machine_cpu)"
        children_cpu_us l0
        t0="$(date +%s.%N)"
        r="$("$run" "$DURATION" "$port" "$setup")"
        t1="$(date +%s.%N)"
        children_cpu_us l1
        m1="$(machine_cpu)"
        after="$(cpu_us "$server_pid")"
        stop_server
        read -r requests p99 errors <<<"$r"
        local rps cpu_per_req machine_per_req other
        rps="$(awk -v n="$requests" -v d="$DURATION" 'BEGIN {printf "%.0f", n / d}')"
        cpu_per_req="$(awk -v c=$(( after - before )) -v n="$requests" \
            'BEGIN {printf "%.2f", c / n}')"
        # Whole machine (server + load + softirq + anything else) per request.
        machine_per_req="$(awk -v a="$m0" -v b="$m1" -v n="$requests" 'BEGIN {
            split(a, x, " "); split(b, y, " ");
            printf "%.2f", (y[1] - x[1] + y[2] - x[2]) / n}')"
        # Process time charged to neither the server nor the load, % of the machine.
        other="$(awk -v a="$m0" -v b="$m1" -v s=$(( after - before )) -v l=$(( l1 - l0 )) \
            -v t0="$t0" -v t1="$t1" -v n="$(nproc)" 'BEGIN {
            split(a, x, " "); split(b, y, " ");
            o = (y[1] - x[1] + y[2] - x[2] - s - l) / ((t1 - t0) * 1e6 * n);
            printf "%.0f", (o < 0 ? 0 : o) * 100}')"
        printf '  %-2s %-13s %-8s round %s: %8s req/s  p99 %8s ms  %6s µs/req (machine %6s)  errors %s  other %s%%  (load %s)\n' \
            "$setup" "$loader" "$server" "$round" "$rps" "$p99" "$cpu_per_req" \
            "$machine_per_req" "$errors" "$other" "$load_at_start"
        if (( other <= OTHER_MAX )) || (( try == RETRIES )); then
            (( other <= OTHER_MAX )) || echo "  (kept although the machine was busy)"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$setup" "$loader" \
                "$server" "$round" "$rps" "$p99" "$cpu_per_req" "$errors" "$machine_per_req" \
                "$other" "$load_at_start" >>"$tmp/results.tsv"
            return
        fi
        echo "  (busy machine: repeating)"
    done
}

# --- the body nginx serves: percore's own ----------------------------------
port="$(free_port)"
start_percore b "$port"
curl -s "http://127.0.0.1:$port/api/data/client-50" >"$tmp/body.json"
stop_server
[[ -s "$tmp/body.json" ]] || die "could not fetch a body from percore"

echo "percore vs nginx: $DURATION s per run (+$WARMUP s warm-up), $CONNECTIONS connections," \
    "$IDS ids, body $(wc -c <"$tmp/body.json") bytes, $(nproc) cores, load now $(loadavg)"
echo "percore: $PERCORE_BIN"
echo "nginx:   $("$NGINX" -v 2>&1 | sed 's/.*version: //') (NGINX_MODE=$NGINX_MODE), wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
[[ $have_load == 1 ]] && echo "percore-load: $PERCORE_LOAD_BIN (max --engine $PERCORE_LOAD_ENGINE)"
echo
: >"$tmp/results.tsv"
for setup in $SETUPS; do
    for loader in $LOADERS; do
        [[ "$loader" == percore-load && $have_load == 0 ]] && continue
        if [[ "$loader" == percore-load && "$setup" == c ]]; then
            echo "  c  percore-load: skipped (no pipelining in percore-load)"
            continue
        fi
        for round in $(seq "$ROUNDS"); do
            # Alternate which server goes first, so drift hits both alike.
            if (( round % 2 )); then order="nginx percore"; else order="percore nginx"; fi
            for server in $order; do
                measure "$setup" "$loader" "$server" "$round"
            done
        done
    done
done

# --- summary: averages over rounds, percore / nginx --------------------------
echo
echo "set-up: a = 1 worker on core 0, load on core 1; b = 2 workers + load on 2 cores;"
echo "        c = b with $PIPELINE pipelined requests per round trip"
echo
awk -F'\t' '
    { k = $1 "\t" $2; seen[k] = 1; order[k] = order[k] ? order[k] : ++n; keys[n] = k
      rps[k, $3] += $5; p99[k, $3] += $6; cpu[k, $3] += $7; err[k, $3] += $8
      mach[k, $3] += $9; cnt[k, $3]++ }
    END {
        printf "| set-up | load | nginx req/s | percore req/s | ratio | nginx p99 ms | percore p99 ms | ratio | nginx CPU µs/req | percore CPU µs/req | ratio | machine µs/req n/p | errors n/p |\n"
        printf "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for (i = 1; i <= n; i++) {
            k = keys[i]; if (done[k]++) continue
            split(k, kk, "\t")
            cn = cnt[k, "nginx"]; cp = cnt[k, "percore"]
            if (!cn || !cp) continue
            rn = rps[k, "nginx"] / cn; rp = rps[k, "percore"] / cp
            pn = p99[k, "nginx"] / cn; pp = p99[k, "percore"] / cp
            un = cpu[k, "nginx"] / cn; up = cpu[k, "percore"] / cp
            mn = mach[k, "nginx"] / cn; mp = mach[k, "percore"] / cp
            printf "| %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f/%.1f | %d/%d |\n",
                kk[1], kk[2], rn, rp, rp / rn, pn, pp, (pn > 0 ? pp / pn : 0), un, up, up / un,
                mn, mp, err[k, "nginx"], err[k, "percore"]
        }
    }' "$tmp/results.tsv"
echo
echo "server CPU: utime+stime of the server processes; machine: all cores' user+system+irq+softirq"
echo "(server, load generator, loopback TCP in softirq, anything else), per request."
echo "load average at the end: $(loadavg)"
