#!/usr/bin/env bash
# Server CPU per request at low, open-loop load: percore against nginx
# (from memory) and the io_uring floor, in one run, alternating (issue 16).
#
# Saturated benchmarks (compare.sh) share the cost of waking a worker over a
# batch; at the seed's ~1,000 req/s each request finds its worker asleep and
# pays the whole wake-up. Here `percore-load rate` sends R requests/s on a
# schedule (an open loop: latency from the intended send time) over 100
# keep-alive connections cycling over 100 client ids, at each rate in RATES,
# against each server with two workers (one per core, pinned; the load
# shares the cores), one server at a time, the order reversed every round.
# Server CPU = utime+stime of every server process and thread from
# /proc/<pid>/stat, delta over the run (connect to last response), divided
# by the requests answered. The servers are started by benches/peers.sh.
#
# Usage:  cargo build --release && cargo build --release --example floor &&
#         benches/low_load.sh
# Env:    RATES="1000 3000 10000"   arrival rates, requests/s
#         DURATION=20       measured seconds per run
#         WARMUP=3          seconds of the same load before each measured run
#         ROUNDS=1          alternations of the servers per rate (averaged; with 2 or
#                           more, percore's ratio to each peer per round and its median)
#         SERVERS="nginx floor percore"   (percore is required; percore_coop
#                           adds percore with IO_URING_DEFER_TASKRUN=0, percore_send
#                           with IO_URING_RING_SEND=0, percore_poll
#                           with IO_URING_RECV_MULTISHOT=0, percore_alt the build
#                           PERCORE_ALT_BIN, see peers.sh)
#         WORKERS=2         workers per server
#         THREADS=2         percore-load threads
#         NICE=-19          servers and load at this nice value, and the session's
#                           autogroup too (root only; see peers.sh); 0: off
#         NGINX_MODE=return return (default) or file, see peers.sh
#         PERCORE_BIN, FLOOR_BIN, PERCORE_LOAD_BIN   binaries (default target/release/…)
#         RESULTS=          also keep the raw TSV here
# Needs: nginx, curl, taskset, percore-load (built with percore). Installs nothing.
set -euo pipefail

# shellcheck source=benches/peers.sh
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
PERCORE_LOAD_BIN="${PERCORE_LOAD_BIN:-$target/release/percore-load}"
RATES="${RATES:-1000 3000 10000}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-3}"
ROUNDS="${ROUNDS:-1}"
SERVERS="${SERVERS:-nginx floor percore}"
THREADS="${THREADS:-2}"
CONNECTIONS=100
IDS=100

need_servers "$SERVERS"
[[ " $SERVERS " == *" percore "* ]] || die "SERVERS must include percore"
[[ -x "$PERCORE_LOAD_BIN" ]] || die "$PERCORE_LOAD_BIN not found: cargo build --release"
NICE="${NICE:--19}"

tmp="$(mktemp -d /tmp/percore-low-load.XXXXXX)"
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

# One open-loop run; prints "requests p50_ms p99_ms errors".
run_rate() { # rate seconds port
    local json="$tmp/load.json"
    rm -f "$json"
    # Exit code 99 means "a criterion failed": the figures are still wanted.
    "$PERCORE_LOAD_BIN" rate --rate "$1" --duration "${2}s" --connections "$CONNECTIONS" \
        --ids "$IDS" --threads "$THREADS" --url "http://127.0.0.1:$3" --no-server-metrics \
        --json "$json" >>"$tmp/percore-load.log" 2>&1 || true
    [[ -s "$json" ]] || die "percore-load wrote no report (see $tmp/percore-load.log)"
    # Pretty-printed JSON, one "key": value per line; latency_ms comes first.
    local requests errors p50 p99
    requests="$(sed -n 's/^ *"requests": \([0-9]*\).*/\1/p' "$json" | head -1)"
    errors="$(sed -n 's/^ *"errors": \([0-9]*\),*$/\1/p' "$json" | head -1)"
    p50="$(sed -n '/"latency_ms"/,/}/s/^ *"p50": \([0-9.]*\).*/\1/p' "$json" | head -1)"
    p99="$(sed -n '/"latency_ms"/,/}/s/^ *"p99": \([0-9.]*\).*/\1/p' "$json" | head -1)"
    echo "$requests $p50 $p99 ${errors:-0}"
}

measure() { # rate server round
    local rate=$1 server=$2 round=$3 port before after m0 m1 t0 t1 r
    port="$(free_port)"
    "start_$server" b "$port"
    run_rate "$rate" "$WARMUP" "$port" >/dev/null
    local load_at_start
    load_at_start="$(loadavg)"
    before="$(cpu_us "$server_pid")"
    m0="$(machine_cpu)"
    t0="$(date +%s.%N)"
    r="$(run_rate "$rate" "$DURATION" "$port")"
    t1="$(date +%s.%N)"
    m1="$(machine_cpu)"
    after="$(cpu_us "$server_pid")"
    stop_server
    local requests p50 p99 errors
    read -r requests p50 p99 errors <<<"$r"
    (( requests > 0 )) || die "no request answered by $server at $rate req/s"
    local cpu_per_req core_pct busy_pct
    cpu_per_req="$(awk -v c=$(( after - before )) -v n="$requests" 'BEGIN {printf "%.2f", c / n}')"
    core_pct="$(awk -v c=$(( after - before )) -v t0="$t0" -v t1="$t1" \
        'BEGIN {printf "%.1f", 100 * c / ((t1 - t0) * 1e6)}')"
    # The whole machine's busy share over the run (server, load, anything else).
    busy_pct="$(awk -v a="$m0" -v b="$m1" 'BEGIN {split(a, x, " "); split(b, y, " ");
        busy = y[1] - x[1] + y[2] - x[2]; idle = y[3] - x[3];
        printf "%.0f", 100 * busy / (busy + idle)}')"
    printf '  %6s req/s  %-8s round %s: %7s requests  %6s µs/req  %5s %% of a core  p50 %6s ms  p99 %7s ms  errors %s  machine busy %s%%  (load %s)\n' \
        "$rate" "$server" "$round" "$requests" "$cpu_per_req" "$core_pct" "$p50" "$p99" \
        "$errors" "$busy_pct" "$load_at_start"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rate" "$server" "$round" "$requests" \
        "$cpu_per_req" "$p50" "$p99" "$errors" "$busy_pct" >>"$tmp/results.tsv"
}

fetch_body
echo "low load, open loop: $DURATION s per run (+$WARMUP s warm-up), $CONNECTIONS connections," \
    "$IDS ids, $WORKERS workers per server, $THREADS load threads, body $(wc -c <"$tmp/body.json") bytes,"
echo "  $(nproc) cores, load now $(loadavg)"
[[ " $SERVERS " == *" nginx "* ]] && echo "nginx: $("$NGINX" -v 2>&1 | sed 's/.*version: //') (NGINX_MODE=$NGINX_MODE)"
echo
: >"$tmp/results.tsv"
reversed="$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')"
for rate in $RATES; do
    for round in $(seq "$ROUNDS"); do
        if (( round % 2 )); then order="$SERVERS"; else order="$reversed"; fi
        for server in $order; do
            measure "$rate" "$server" "$round"
        done
    done
done

echo
awk -F'\t' '
    { k = $1; if (!(k in seen)) { seen[k] = 1; keys[++n] = k }
      cpu[k, $2] += $5; p99[k, $2] += $7; err[k, $2] += $8; req[k, $2] += $4; cnt[k, $2]++ }
    function avg(a, k, s) { return cnt[k, s] ? a[k, s] / cnt[k, s] : 0 }
    function fmt(v, f) { return v > 0 ? sprintf(f, v) : "—" }
    function ratio(p, r) { return (p > 0 && r > 0) ? sprintf("%.2f", p / r) : "—" }
    END {
        printf "| rate | nginx µs/req | floor µs/req | percore µs/req | percore / nginx | percore / floor | p99 ms n/f/p | errors n/f/p | percore_coop µs/req | percore_poll µs/req | percore_send µs/req | percore_alt µs/req |\n"
        printf "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        for (i = 1; i <= n; i++) {
            k = keys[i]
            un = avg(cpu, k, "nginx"); uf = avg(cpu, k, "floor"); up = avg(cpu, k, "percore")
            printf "| %s req/s | %s | %s | %s | %s | %s | %s/%s/%s | %s/%s/%s | %s | %s | %s | %s |\n", k,
                fmt(un, "%.1f"), fmt(uf, "%.1f"), fmt(up, "%.1f"), ratio(up, un), ratio(up, uf),
                fmt(avg(p99, k, "nginx"), "%.2f"), fmt(avg(p99, k, "floor"), "%.2f"),
                fmt(avg(p99, k, "percore"), "%.2f"),
                (cnt[k, "nginx"] ? err[k, "nginx"] : "—"), (cnt[k, "floor"] ? err[k, "floor"] : "—"),
                (cnt[k, "percore"] ? err[k, "percore"] : "—"),
                fmt(avg(cpu, k, "percore_coop"), "%.1f"), fmt(avg(cpu, k, "percore_poll"), "%.1f"),
                fmt(avg(cpu, k, "percore_send"), "%.1f"), fmt(avg(cpu, k, "percore_alt"), "%.1f")
        }
    }' "$tmp/results.tsv"

# Per round, percore against each peer measured in the same round (minutes
# apart at most, so a machine that slows down slows both): the ratios, their
# median, and in how many rounds percore cost no more. The averages above can
# hide a round the machine ran slow for one server only.
echo
awk -F'\t' '
    { k = $1; if (!(k in seen)) { seen[k] = 1; keys[++n] = k }
      cpu[k, $2, $3] = $5; if ($3 > rounds) rounds = $3; if ($2 == "percore_alt") has_alt = 1 }
    function median(v, m,   i, j, t) {
        for (i = 2; i <= m; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    function paired(k, a, b,   r, m, v, list, le) {
        m = 0; list = ""; le = 0
        for (r = 1; r <= rounds; r++)
            if (cpu[k, a, r] > 0 && cpu[k, b, r] > 0) {
                v[++m] = cpu[k, a, r] / cpu[k, b, r]
                list = list (m > 1 ? " " : "") sprintf("%.2f", v[m])
                if (v[m] <= 1) le++
            }
        return m ? sprintf("%s | %.2f | %d of %d", list, median(v, m), le, m) : "— | — | —"
    }
    END {
        if (rounds < 2) exit
        printf "| rate | percore / nginx, each round | median | percore ≤ nginx | percore / floor, each round | median | percore ≤ floor |\n"
        printf "| ---: | --- | ---: | ---: | --- | ---: | ---: |\n"
        for (i = 1; i <= n; i++)
            printf "| %s req/s | %s | %s |\n", keys[i], paired(keys[i], "percore", "nginx"), paired(keys[i], "percore", "floor")
        if (!has_alt) exit
        printf "\n| rate | percore_alt / percore, each round | median | percore_alt ≤ percore |\n"
        printf "| ---: | --- | ---: | ---: |\n"
        for (i = 1; i <= n; i++)
            printf "| %s req/s | %s |\n", keys[i], paired(keys[i], "percore_alt", "percore")
    }' "$tmp/results.tsv"
echo
echo "µs/req: server utime+stime (all its processes and threads, /proc/<pid>/stat) over the run"
echo "/ requests answered; p99 from the intended send time. load average at the end: $(loadavg)"
