#!/usr/bin/env bash
# percore against two references, same workers, same load, alternating, in
# one run (issue 16's honest baseline):
#
#   nginx  (Debian `nginx-light`) its fastest fixed-response configuration:
#          percore's exact body for /api/data/client-50 (~615 bytes) from
#          memory (`return 200 '<body>'`), each worker on its own `reuseport`
#          socket, pinned like percore's shards (NGINX_MODE=file: from a file
#          with sendfile, the mode of docs/performance.md's history rows);
#   floor  benches/floor/: the least a server can do per request on io_uring
#          (multishot accept, recv and send as ring operations, one
#          io_uring_enter per loop turn, SINGLE_ISSUER | DEFER_TASKRUN),
#          answering percore's exact head and body.
#
# (benches/peers.sh starts the three.) Each is driven by the same load
# generators, one server at a time:
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
# with the ratios percore / nginx and percore / floor. Errors (non-2xx,
# socket errors) are shown.
#
# Usage:  cargo build --release && cargo build --release --example floor &&
#         benches/compare.sh
# Env:    DURATION=10       measured seconds per run
#         WARMUP=3          warm-up seconds before each measured run (not counted)
#         ROUNDS=1          alternations of the servers per set-up (averaged;
#                           the order reverses every round)
#         SETUPS="a b c"    which set-ups
#         SERVERS="nginx floor percore"   which servers (percore is required; the
#                           variants percore_coop, percore_poll, percore_send and
#                           percore_alt, the build PERCORE_ALT_BIN, see peers.sh)
#         LOADERS="wrk percore-load"
#         NICE=-19          run servers and load at this nice value, and the
#                           session's autogroup too (root only; see peers.sh),
#                           so that builds running alongside barely share
#                           the cores; NICE=0 to disable
#         IDLE_MIN=0        if > 0, before each run, wait (≤ 60 s) until the machine
#                           was ≥ this % idle for a second (other builds and
#                           tests share this machine); 0: don't wait
#         OTHER_MAX=15      a run during which processes other than the server
#                           and the load used more than this % of the machine
#                           is repeated (up to RETRIES=1 times) and flagged
#         NGINX_MODE=return return (default) or file, as above
#         PERCORE_BIN, FLOOR_BIN, PERCORE_LOAD_BIN   binaries (default target/release/…)
#         PERCORE_LOAD_ENGINE=epoll       percore-load max's engine (epoll|glommio)
#         RESULTS=          also keep the raw TSV here
# Needs: nginx, wrk, curl, taskset. Installs nothing.
set -euo pipefail

# shellcheck source=benches/peers.sh
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
PERCORE_LOAD_BIN="${PERCORE_LOAD_BIN:-$target/release/percore-load}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-3}"
ROUNDS="${ROUNDS:-1}"
SETUPS="${SETUPS:-a b c}"
SERVERS="${SERVERS:-nginx floor percore}"
LOADERS="${LOADERS:-wrk percore-load}"
IDLE_MIN="${IDLE_MIN:-0}"
OTHER_MAX="${OTHER_MAX:-15}"
RETRIES="${RETRIES:-1}"
PERCORE_LOAD_ENGINE="${PERCORE_LOAD_ENGINE:-epoll}"
CONNECTIONS=100
IDS=100
PIPELINE=16

# --- prerequisites ---------------------------------------------------------
need_servers "$SERVERS"
[[ " $SERVERS " == *" percore "* ]] || die "SERVERS must include percore"
command -v wrk >/dev/null || die "wrk not found: apt-get install wrk"
have_load=0
if [[ " $LOADERS " == *" percore-load "* ]]; then
    if [[ -x "$PERCORE_LOAD_BIN" ]] && "$PERCORE_LOAD_BIN" max --help >/dev/null 2>&1; then
        have_load=1
    else
        echo "note: $PERCORE_LOAD_BIN missing or without 'max': percore-load runs skipped" >&2
    fi
fi
(( $(nproc) >= 2 )) || die "needs 2 cores (server on core 0, load on core 1 in set-up a)"
# Everything started from here on inherits the priority: the measured
# processes win the cores over whatever else this machine is running.
NICE="${NICE:--19}"

# --- scratch dir and cleanup -----------------------------------------------
tmp="$(mktemp -d /tmp/percore-compare.XXXXXX)"
# nginx workers run as an unprivileged user: they must be able to read the body.
chmod 755 "$tmp"
cleanup() {
    stop_server
    restore_priority
    [[ -n "${RESULTS:-}" && -f "$tmp/results.tsv" ]] && cp "$tmp/results.tsv" "$RESULTS"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
prioritise

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

# --- the body every server answers: percore's own ---------------------------
fetch_body

echo "percore vs $(tr " " "\n" <<<"$SERVERS" | grep -vx percore | paste -sd " "): $DURATION s per run (+$WARMUP s warm-up), $CONNECTIONS connections," \
    "$IDS ids, body $(wc -c <"$tmp/body.json") bytes, $(nproc) cores, load now $(loadavg)"
echo "percore: $PERCORE_BIN"
[[ " $SERVERS " == *" floor "* ]] && echo "floor:   $FLOOR_BIN"
[[ " $SERVERS " == *" nginx "* ]] && echo "nginx:   $("$NGINX" -v 2>&1 | sed 's/.*version: //') (NGINX_MODE=$NGINX_MODE)"
echo "wrk:     $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
[[ $have_load == 1 ]] && echo "percore-load: $PERCORE_LOAD_BIN (max --engine $PERCORE_LOAD_ENGINE)"
echo
: >"$tmp/results.tsv"
reversed="$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')"
for setup in $SETUPS; do
    for loader in $LOADERS; do
        [[ "$loader" == percore-load && $have_load == 0 ]] && continue
        if [[ "$loader" == percore-load && "$setup" == c ]]; then
            echo "  c  percore-load: skipped (no pipelining in percore-load)"
            continue
        fi
        for round in $(seq "$ROUNDS"); do
            # Reverse the order every round, so drift hits every server alike.
            if (( round % 2 )); then order="$SERVERS"; else order="$reversed"; fi
            for server in $order; do
                measure "$setup" "$loader" "$server" "$round"
            done
        done
    done
done

# --- summary: averages over rounds; percore / nginx and percore / floor -------
echo
echo "set-up: a = 1 worker on core 0, load on core 1; b = 2 workers + load on 2 cores;"
echo "        c = b with $PIPELINE pipelined requests per round trip"
echo
awk -F'\t' '
    { k = $1 "\t" $2; if (!(k in seen)) { seen[k] = 1; keys[++n] = k }
      rps[k, $3] += $5; p99[k, $3] += $6; cpu[k, $3] += $7; err[k, $3] += $8
      mach[k, $3] += $9; cnt[k, $3]++ }
    function avg(a, k, s) { return cnt[k, s] ? a[k, s] / cnt[k, s] : 0 }
    function fmt(v, f) { return v > 0 ? sprintf(f, v) : "—" }
    function ratio(p, r) { return (p > 0 && r > 0) ? sprintf("%.2f", p / r) : "—" }
    END {
        printf "| set-up | load | req/s nginx | floor | percore | p/n | p/f | p99 ms n | f | p | CPU µs/req nginx | floor | percore | p/n | p/f | machine µs/req n/f/p | errors n/f/p |\n"
        printf "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for (i = 1; i <= n; i++) {
            k = keys[i]; split(k, kk, "\t")
            rn = avg(rps, k, "nginx"); rf = avg(rps, k, "floor"); rp = avg(rps, k, "percore")
            un = avg(cpu, k, "nginx"); uf = avg(cpu, k, "floor"); up = avg(cpu, k, "percore")
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s/%s | %s/%s/%s |\n",
                kk[1], kk[2], fmt(rn, "%.0f"), fmt(rf, "%.0f"), fmt(rp, "%.0f"),
                ratio(rp, rn), ratio(rp, rf),
                fmt(avg(p99, k, "nginx"), "%.2f"), fmt(avg(p99, k, "floor"), "%.2f"),
                fmt(avg(p99, k, "percore"), "%.2f"),
                fmt(un, "%.2f"), fmt(uf, "%.2f"), fmt(up, "%.2f"), ratio(up, un), ratio(up, uf),
                fmt(avg(mach, k, "nginx"), "%.1f"), fmt(avg(mach, k, "floor"), "%.1f"),
                fmt(avg(mach, k, "percore"), "%.1f"),
                (cnt[k, "nginx"] ? err[k, "nginx"] : "—"), (cnt[k, "floor"] ? err[k, "floor"] : "—"),
                (cnt[k, "percore"] ? err[k, "percore"] : "—")
        }
    }' "$tmp/results.tsv"
# Variants of percore (percore_coop, percore_poll, percore_send, percore_alt;
# see peers.sh) against percore, averaged over the same rounds.
awk -F'\t' '
    $3 != "nginx" && $3 != "floor" && $3 != "percore" { others[$3] = 1 }
    { k = $1 "\t" $2; if (!(k in seen)) { seen[k] = 1; keys[++n] = k }
      rps[k, $3] += $5; cpu[k, $3] += $7; err[k, $3] += $8; cnt[k, $3]++ }
    function avg(a, k, s) { return cnt[k, s] ? a[k, s] / cnt[k, s] : 0 }
    function ratio(p, r) { return (p > 0 && r > 0) ? sprintf("%.2f", p / r) : "—" }
    END {
        if (length(others) == 0) exit
        printf "\n| set-up | load | server | req/s | / percore | CPU µs/req | / percore | errors |\n"
        printf "|---|---|---|---:|---:|---:|---:|---:|\n"
        for (i = 1; i <= n; i++) {
            k = keys[i]; split(k, kk, "\t")
            for (o in others) if (cnt[k, o])
                printf "| %s | %s | %s | %.0f | %s | %.2f | %s | %s |\n", kk[1], kk[2], o,
                    avg(rps, k, o), ratio(avg(rps, k, o), avg(rps, k, "percore")),
                    avg(cpu, k, o), ratio(avg(cpu, k, o), avg(cpu, k, "percore")), err[k, o]
        }
    }' "$tmp/results.tsv"
echo
echo "p/n = percore / nginx, p/f = percore / floor. server CPU: utime+stime of the server"
echo "processes; machine: all cores' user+system+irq+softirq (server, load generator, loopback"
echo "TCP in softirq, anything else), per request."
echo "load average at the end: $(loadavg)"
