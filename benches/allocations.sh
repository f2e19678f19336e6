#!/usr/bin/env bash
# Heap allocations per request once warm (issue 16: the request path
# allocates nothing), counted with uprobes on libc's malloc, calloc and
# realloc; and, with one more on libc's clock_gettime, clock reads per
# request (the executor's bookkeeping and percore's own: the Date header,
# the keep-alive deadline).
#
# One percore (WORKERS=1 by default, CACHE_CAPACITY=256 so that the miss
# kind, which cycles over 4,096 ids, misses every time) on a free loopback
# port. For each kind of traffic (benches/allocations_client.py: hit, miss,
# health, metrics, pipelined, split, connect) the client first sends WARM
# requests of that kind, then `perf stat` counts the calls of the three
# probes in every thread of the server while the client sends exactly COUNT
# requests (connect: COUNT connections, one request each) and reads every
# response. Warm-up and counted requests share one connection, opened before
# the counter attaches. The "idle" row is the same time with no request: what the server
# allocates in the background (its periodic sweep, metrics sampling), to set
# against the rest.
#
# STACKS=1 also records where each allocation comes from (`perf record -g`
# on the probes, DWARF unwinding) and prints the most frequent stacks per
# kind (STACKS_TOP=8 of them, STACKS_WIDTH=400 characters each).
#
# Usage:  cargo build --release && benches/allocations.sh
# Env:    COUNT=2000, WARM=5000, KINDS="idle hit miss health metrics
#         pipelined split connect", WORKERS=1, STACKS=0, PERCORE_BIN
# Needs:  perf (linux-perf) with uprobes (root), python3, curl, ss.
# Installs nothing; removes the probes it added on exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
PERCORE_BIN="${PERCORE_BIN:-$target/release/percore}"
COUNT="${COUNT:-2000}"
WARM="${WARM:-5000}"
KINDS="${KINDS:-idle hit miss health metrics pipelined split connect}"
WORKERS="${WORKERS:-1}"
STACKS="${STACKS:-0}"
client="$here/benches/allocations_client.py"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
[[ -x "$PERCORE_BIN" ]] || die "$PERCORE_BIN not found: cargo build --release"
command -v perf >/dev/null || die "perf not found (apt-get install linux-perf)"
command -v python3 >/dev/null || die "python3 not found"

libc="$(ldd "$PERCORE_BIN" | awk '/libc\.so/ { print $3 }')"
[[ -n "$libc" ]] || die "cannot find the libc percore links"
alloc_events="probe_libc:malloc,probe_libc:calloc,probe_libc:realloc"
events="$alloc_events,probe_libc:clock_gettime"
added=()
for fn in malloc calloc realloc clock_gettime; do
    if ! perf probe -l "probe_libc:$fn" 2>/dev/null | grep -q .; then
        perf probe -q -x "$libc" --add "$fn" || die "cannot add a uprobe on $fn (root?)"
        added+=("probe_libc:$fn")
    fi
done

tmp="$(mktemp -d /tmp/percore-alloc.XXXXXX)"
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    local p
    for p in "${added[@]}"; do perf probe -q --del "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# perf script samples -> "count frame < caller < ..." per distinct stack, the
# allocator's own frames left out, most frequent first.
stacks() {
    awk 'BEGIN { RS = "" } {
        n = split($0, line, "\n"); s = ""; c = 0
        for (i = 1; i <= n && c < 12; i++) {
            split(line[i], f, " "); sym = f[2]; sub(/\+0x.*/, "", sym)
            if (sym ~ /alloc|malloc|^new$|^pin$|try_new|new_uninit|grow|reserve|^push$|^clone$/) continue
            s = s " < " sym; c++
        }
        print s
    }' | sort | uniq -c | sort -rn | head -"${STACKS_TOP:-8}" | cut -c1-"${STACKS_WIDTH:-400}"
}

while :; do
    port=$(( 20000 + RANDOM % 20000 ))
    ss -Htln "sport = :$port" | grep -q . || break
done
HOST=127.0.0.1 PORT="$port" WORKERS="$WORKERS" CACHE_CAPACITY=256 RUST_LOG=warn \
    "$PERCORE_BIN" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/api/health" && break
    sleep 0.05
done
curl -s -o /dev/null "http://127.0.0.1:$port/api/health" || die "percore did not start"

echo "allocations per request: percore WORKERS=$WORKERS, $WARM warm-up then $COUNT counted" \
    "requests per kind, load now $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| kind | requests | malloc | calloc | realloc | allocations / request | clock reads / request |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"

for kind in $KINDS; do
    n="$COUNT"
    arg="$COUNT"
    if [[ "$kind" == idle ]]; then
        n=1
        arg=3000
    fi
    rm -f "$tmp/ready" "$tmp/go"
    python3 "$client" "$port" "$kind" "$WARM" "$arg" "$tmp" &
    client_pid=$!
    until [[ -e "$tmp/ready" ]]; do
        kill -0 "$client_pid" 2>/dev/null || die "the $kind client failed in its warm-up"
        sleep 0.05
    done
    perf stat -x, -e "$events" -p "$pid" -o "$tmp/stat.$kind" >/dev/null 2>&1 &
    counter=$!
    sleep 1 # attached before the client goes on
    start_ms=$(date +%s%3N)
    touch "$tmp/go"
    wait "$client_pid" || die "the $kind client failed"
    end_ms=$(date +%s%3N)
    kill -INT "$counter"
    wait "$counter" 2>/dev/null || true
    read -r m c r t < <(awk -F, '
        $3 ~ /malloc$/ { m = $1 } $3 ~ /calloc$/ { c = $1 } $3 ~ /realloc$/ { r = $1 }
        $3 ~ /clock_gettime$/ { t = $1 }
        END { print m + 0, c + 0, r + 0, t + 0 }' "$tmp/stat.$kind")
    if [[ "$kind" == idle ]]; then
        idle_ms=$(( end_ms - start_ms + 1000 ))
        printf '| idle (%d ms, no request) | 0 | %d | %d | %d | — | — (%d reads) |\n' \
            "$idle_ms" "$m" "$c" "$r" "$t"
    else
        awk -v k="$kind" -v n="$n" -v m="$m" -v c="$c" -v r="$r" -v t="$t" \
            'BEGIN { printf "| %s | %d | %d | %d | %d | %.3f | %.2f |\n", k, n, m, c, r, (m + c + r) / n, t / n }'
    fi
    if [[ "$STACKS" == 1 && "$kind" != idle ]]; then
        rm -f "$tmp/ready" "$tmp/go"
        python3 "$client" "$port" "$kind" "$WARM" "$COUNT" "$tmp" &
        client_pid=$!
        until [[ -e "$tmp/ready" ]]; do sleep 0.05; done
        perf record -q -e "$alloc_events" -g --call-graph dwarf,16384 -p "$pid" -o "$tmp/perf.$kind" \
            >/dev/null 2>&1 &
        counter=$!
        sleep 1
        touch "$tmp/go"
        wait "$client_pid" || die "the $kind client failed"
        kill -INT "$counter"
        wait "$counter" 2>/dev/null || true
        echo "-- $kind: where the allocations come from (calls, innermost frames first)"
        perf script -i "$tmp/perf.$kind" -F ip,sym 2>/dev/null | stacks
    fi
done
echo
echo "Each window opens 1 s before the counted requests, on a connection already warm" \
    "(connect: after WARM connections); idle: what an idle server allocates in as long."
