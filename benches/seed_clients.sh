#!/usr/bin/env bash
# The seed loop (`percore-load sweep`, one step) at a high client count against
# percore and nginx answering from memory, alternating, in one invocation
# (issue 15: percore against nginx at the 1,000-client step; 10,000 clients).
#
# Each run: a fresh server on a free port (started by benches/peers.sh), then
# `percore-load sweep --clients CLIENTS --step-duration STEP` against it. The
# order of the servers is reversed every round. Reported per run: requests/s,
# errors, client-side p50/p95/p99, server CPU per request (utime+stime of every
# server process and thread from /proc/<pid>/stat, delta over the whole
# percore-load run, connects included, / requests answered), the generator's
# own CPU, the peak RSS and open fds of the server (sampled from /proc every
# 0.5 s, all its processes), and the 1-min load average before the run. With
# METRICS=1 (percore only) the sweep also samples /api/metrics, and the
# server-side p95/p99 of the step are printed from its report.
#
# Usage:  cargo build --release && benches/seed_clients.sh
# Env:    CLIENTS=1000      seed clients (one keep-alive connection each)
#         STEP=10s          duration of the step
#         ROUNDS=2          alternations of the servers
#         SERVERS="percore nginx"
#         SETUP=b           b: WORKERS workers, one per core, the load on every
#                           core; a: one worker under `taskset -c 0`, the load
#                           pinned to LOAD_CPUS
#         LOAD_CPUS=1       generator cores with SETUP=a
#         WORKERS=2         workers per server with SETUP=b
#         METRICS=0         1: let the sweep sample percore's /api/metrics
#                           (server-side latency, RSS, fds; percore only)
#         NICE=0            servers and load at this nice value (root only; see
#                           peers.sh); 0 leaves the machine's other jobs alone
#         RESULTS=          keep the JSON reports and the TSV in this directory
# Raises the open-file limit to the hard limit for servers and generator.
# Needs: nginx (Debian nginx-light), curl, taskset, jq. Installs nothing.
set -euo pipefail

# shellcheck source=benches/peers.sh
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
PERCORE_LOAD_BIN="${PERCORE_LOAD_BIN:-$target/release/percore-load}"
CLIENTS="${CLIENTS:-1000}"
STEP="${STEP:-10s}"
ROUNDS="${ROUNDS:-2}"
SERVERS="${SERVERS:-percore nginx}"
SETUP="${SETUP:-b}"
LOAD_CPUS="${LOAD_CPUS:-1}"
METRICS="${METRICS:-0}"
NICE="${NICE:-0}"

need_servers "$SERVERS"
[[ -x "$PERCORE_LOAD_BIN" ]] || die "$PERCORE_LOAD_BIN not found: cargo build --release"
command -v jq >/dev/null || die "jq not found"
[[ "$METRICS" == 0 || "$SERVERS" == percore ]] || die "METRICS=1 needs SERVERS=percore"
ulimit -n "$(ulimit -Hn)"

# peers.sh's free_port draws from 20000-39999, which overlaps the ephemeral
# range: after a run with thousands of clients, a port may still be held by a
# client socket in TIME_WAIT and the server cannot bind it. Draw below the
# ephemeral range and check every socket state.
free_port() {
    local p low
    low="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)"
    (( low > 12000 )) || die "ephemeral range starts at $low: no room for a server port below it"
    while :; do
        p=$(( 10000 + RANDOM % (low - 12000) ))
        (( p >= 3900 && p <= 3999 )) && continue
        ss -Htan "( sport = :$p or dport = :$p )" | grep -q . || { echo "$p"; return; }
    done
}

tmp="$(mktemp -d /tmp/percore-seed-clients.XXXXXX)"
chmod 755 "$tmp"
sampler_pid=""
cleanup() {
    if [[ -n "$sampler_pid" ]]; then kill "$sampler_pid" 2>/dev/null || true; fi
    stop_server
    restore_priority
    if [[ -n "${RESULTS:-}" ]]; then
        mkdir -p "$RESULTS"
        cp "$tmp"/*-*.json "$tmp"/results.tsv "$RESULTS"/ 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
prioritise
fetch_body

# Peak RSS (KiB, summed over the server's processes) and open fds, every 0.5 s.
sample_server() { # outfile
    local peak_rss=0 peak_fds=0 rss fds p
    while :; do
        rss=0; fds=0
        for p in $(server_pids); do
            rss=$(( rss + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0) ))
            fds=$(( fds + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) ))
        done
        (( rss > peak_rss )) && peak_rss=$rss
        (( fds > peak_fds )) && peak_fds=$fds
        echo "$peak_rss $peak_fds" >"$1.new" && mv "$1.new" "$1"
        sleep 0.5
    done
}

load_pin=()
[[ "$SETUP" == a ]] && load_pin=(--load-cpus "$LOAD_CPUS")
metrics=(--no-server-metrics)
[[ "$METRICS" == 1 ]] && metrics=()

printf 'server\tround\tload1\treq_s\trequests\terrors\tp50_ms\tp95_ms\tp99_ms\tsrv_cpu_us_req\tsrv_cpu_pct_one_core\tgen_cpu_s\tpeak_rss_mib\tpeak_fds\tsrv_p95_ms\tsrv_p99_ms\terror_kinds\n' \
    | tee "$tmp/results.tsv"
for (( round = 1; round <= ROUNDS; round++ )); do
    order="$SERVERS"
    (( round % 2 == 0 )) && order="$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')"
    for server in $order; do
        port="$(free_port)"
        "start_$server" "$SETUP" "$port"
        json="$tmp/$server-$round.json"
        rm -f "$tmp/peak"
        sample_server "$tmp/peak" & sampler_pid=$!
        load1="$(cut -d' ' -f1 /proc/loadavg)"
        c0="$(cpu_us "$server_pid")"; t0="$(date +%s%N)"
        # Exit code 99 means "a criterion failed": the figures are still wanted.
        /usr/bin/time -f '%U %S' -o "$tmp/gen_time" \
            "$PERCORE_LOAD_BIN" sweep --url "http://127.0.0.1:$port" --clients "$CLIENTS" \
            --step-duration "$STEP" "${metrics[@]}" "${load_pin[@]}" --json "$json" \
            >"$tmp/$server-$round.out" 2>&1 || true
        c1="$(cpu_us "$server_pid")"; t1="$(date +%s%N)"
        kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""
        stop_server
        [[ -s "$json" ]] || { cat "$tmp/$server-$round.out" >&2; die "percore-load wrote no report"; }
        peak_rss=0 peak_fds=0
        [[ -s "$tmp/peak" ]] && read -r peak_rss peak_fds <"$tmp/peak"
        read -r gen_u gen_s < <(tail -n 1 "$tmp/gen_time")
        jq -r --arg server "$server" --arg round "$round" --arg load1 "$load1" \
            --argjson cpu_us "$(( c1 - c0 ))" --argjson wall_ns "$(( t1 - t0 ))" \
            --arg gen "$(awk -v u="$gen_u" -v s="$gen_s" 'BEGIN {printf "%.1f", u + s}')" \
            --argjson rss "$peak_rss" --argjson fds "$peak_fds" '
            def r(n): (. * pow(10; n) | round) / pow(10; n);
            (.steps[0].server_latency_ms // {}) as $srv
            | [$server, $round, $load1, (.summary.rps | round), .summary.requests, .summary.errors,
               (.latency_ms.p50 | r(2)), (.latency_ms.p95 | r(2)), (.latency_ms.p99 | r(2)),
               (if .summary.requests > 0 then ($cpu_us / .summary.requests | r(1)) else "-" end),
               ($cpu_us / ($wall_ns / 1000) * 100 | r(1)), $gen,
               ($rss / 1024 | r(1)), $fds,
               ($srv.p95 // "-"), ($srv.p99 // "-"),
               ((.errors // {}) | to_entries | map(select(.value > 0)) | map("\(.key)=\(.value)") | join(",") | if . == "" then "-" else . end)]
            | @tsv' "$json" | tee -a "$tmp/results.tsv"
    done
done
