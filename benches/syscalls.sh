#!/usr/bin/env bash
# System calls per isolated request: percore, nginx (from memory) and the
# io_uring floor, one worker each, in one run (issue 16).
#
# At ~200 req/s over 10 keep-alive connections every request finds the
# worker asleep, so each pays the whole wake-up: what it costs is counted
# here as system calls. Each server runs with one worker pinned to core 0
# (set-up a of compare.sh) and `percore-load rate` sends from core 1; every
# system call entered by any of the server's processes or threads during the
# run (connects and idle time included) is counted and divided by the
# requests answered. Counted with `perf stat -e 'syscalls:sys_enter_*'`
# (tracepoints: the server runs at full speed), or with `strace -f -c` where
# perf or its tracepoints are missing (METHOD=strace; slower, same counts).
#
# Usage:  cargo build --release && cargo build --release --example floor &&
#         benches/syscalls.sh
# Env:    RATE=200          requests/s
#         CONNECTIONS=10    keep-alive connections (ids cycle over 100)
#         DURATION=10       counted seconds per server
#         WARMUP=2          seconds of the same load before counting
#         SERVERS="nginx floor percore"
#         METHOD=perf       perf or strace
#         NGINX_MODE=return return (default) or file, see peers.sh
#         PERCORE_BIN, FLOOR_BIN, PERCORE_LOAD_BIN   binaries (default target/release/…)
# Needs: perf (linux-perf) or strace, nginx, curl, taskset, percore-load.
# Installs nothing; run as root (perf tracepoints, ptrace).
set -euo pipefail

# shellcheck source=benches/peers.sh
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
PERCORE_LOAD_BIN="${PERCORE_LOAD_BIN:-$target/release/percore-load}"
RATE="${RATE:-200}"
CONNECTIONS="${CONNECTIONS:-10}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
SERVERS="${SERVERS:-nginx floor percore}"
METHOD="${METHOD:-perf}"

need_servers "$SERVERS"
[[ -x "$PERCORE_LOAD_BIN" ]] || die "$PERCORE_LOAD_BIN not found: cargo build --release"
case "$METHOD" in
    perf)
        command -v perf >/dev/null || die "perf not found (apt-get install linux-perf), or METHOD=strace"
        perf stat -e syscalls:sys_enter_io_uring_enter true >/dev/null 2>&1 \
            || die "perf cannot use the syscalls tracepoints here (root? tracefs?): METHOD=strace" ;;
    strace) command -v strace >/dev/null || die "strace not found: apt-get install strace" ;;
    *) die "METHOD must be perf or strace" ;;
esac

tmp="$(mktemp -d /tmp/percore-syscalls.XXXXXX)"
chmod 755 "$tmp"
counter_pid=""
cleanup() {
    if [[ -n "$counter_pid" ]]; then kill -INT "$counter_pid" 2>/dev/null || true; fi
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One open-loop run from core 1; prints the requests answered.
run_load() { # seconds port
    local json="$tmp/load.json"
    rm -f "$json"
    taskset -c 1 "$PERCORE_LOAD_BIN" rate --rate "$RATE" --duration "${1}s" \
        --connections "$CONNECTIONS" --threads 1 --url "http://127.0.0.1:$2" \
        --no-server-metrics --json "$json" >>"$tmp/percore-load.log" 2>&1 || true
    [[ -s "$json" ]] || die "percore-load wrote no report (see $tmp/percore-load.log)"
    sed -n 's/^ *"requests": \([0-9]*\).*/\1/p' "$json" | head -1
}

# Starts counting the server's system calls in the background.
start_counter() { # output-file
    local pids
    pids="$(server_pids)"
    if [[ "$METHOD" == perf ]]; then
        # -p with every pid: perf follows all of their threads.
        perf stat -x, -e 'syscalls:sys_enter_*' -p "$(tr -s ' ' ',' <<<"${pids% }" | sed 's/,$//')" \
            -o "$1" >/dev/null 2>&1 &
    else
        local args=() p
        for p in $pids; do args+=(-p "$p"); done
        strace -f -c -o "$1" "${args[@]}" >/dev/null 2>&1 &
    fi
    counter_pid=$!
    sleep 1 # attached before the load starts
}

# Stops the counter; prints "name count" lines, non-zero counts only.
stop_counter() { # output-file
    kill -INT "$counter_pid" 2>/dev/null || true
    wait "$counter_pid" 2>/dev/null || true
    counter_pid=""
    if [[ "$METHOD" == perf ]]; then
        awk -F, '$3 ~ /^syscalls:sys_enter_/ && $1 + 0 > 0 {
            sub(/^syscalls:sys_enter_/, "", $3); print $3, $1 }' "$1"
    else
        # strace -c: "% time seconds usecs/call calls [errors] syscall".
        awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { print $NF, $4 }' "$1"
    fi
}

fetch_body
echo "system calls per request: $RATE req/s over $CONNECTIONS connections, $DURATION s per" \
    "server, one worker on core 0, load on core 1, counted with $METHOD; load now $(loadavg)"
echo
: >"$tmp/summary"
for server in $SERVERS; do
    port="$(free_port)"
    "start_$server" a "$port"
    run_load "$WARMUP" "$port" >/dev/null
    start_counter "$tmp/count.$server"
    requests="$(run_load "$DURATION" "$port")"
    # Not in a pipeline: stop_counter must wait for its own child.
    stop_counter "$tmp/count.$server" >"$tmp/calls.unsorted"
    sort -k2,2nr "$tmp/calls.unsorted" >"$tmp/calls.$server"
    stop_server
    (( requests > 0 )) || die "no request answered by $server"
    breakdown="$(awk -v n="$requests" '{ printf "%s%s %.2f", sep, $1, $2 / n; sep = ", " }' \
        "$tmp/calls.$server")"
    total="$(awk -v n="$requests" '{ t += $2 } END { printf "%.2f", t / n }' "$tmp/calls.$server")"
    echo "$server: $requests requests, $total system calls per request: $breakdown"
    printf '| %s | %s | %s |\n' "$server" "$total" "$breakdown" >>"$tmp/summary"
done
echo
echo "| server | system calls / request | of which, per request |"
echo "| --- | ---: | --- |"
cat "$tmp/summary"
