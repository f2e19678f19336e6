#!/usr/bin/env bash
# 10,000 connections: memory per idle keep-alive connection, and 10,000
# concurrent active connections served with zero errors.
#
#   1. idle:   `cargo bench --bench end_to_end` with BENCH_MODE=idle: the
#              server's RSS (VmRSS) before and after CONNS connections that
#              each made one request and then stay open, idle; reports
#              (after - before) / CONNS. A few hundred warm-up connections
#              first, so caches and shard buffers are already allocated.
#   2. active: the same bench target in load mode over CONNS connections
#              (closed loop, epoll client): requests/s, errors, p99.
#   3. active: `percore-load max --connections CONNS` if percore-load exists.
#
# The client side needs its own CONNS fds: the bench raises its soft
# RLIMIT_NOFILE to the hard limit (20,000 here); percore-load runs under
# `prlimit --nofile`. 127.0.0.1 → 127.0.0.1:port has ~28,000 ephemeral
# ports (net.ipv4.ip_local_port_range), enough for 10,000 connections.
#
# Usage:  cargo build --release && benches/idle_connections.sh
# Env:    CONNS=10000, SECONDS_ACTIVE=10, WORKERS (default: every core),
#         PERCORE_LOAD_BIN (default target/release/percore-load)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
CONNS="${CONNS:-10000}"
SECONDS_ACTIVE="${SECONDS_ACTIVE:-10}"
PERCORE_BIN="${PERCORE_BIN:-$target/release/percore}"
PERCORE_LOAD_BIN="${PERCORE_LOAD_BIN:-$target/release/percore-load}"

[[ -x "$PERCORE_BIN" ]] || { echo "$PERCORE_BIN not found: cargo build --release" >&2; exit 1; }
hard="$(ulimit -Hn)"
if (( CONNS + 100 > hard )); then
    echo "the hard fd limit ($hard) is too low for $CONNS connections" >&2
    exit 1
fi
export PERCORE_BIN
[[ -n "${WORKERS:-}" ]] && export BENCH_WORKERS="$WORKERS"

echo "== load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1. $CONNS idle keep-alive connections"
(cd "$here" && BENCH_MODE=idle BENCH_CONNECTIONS="$CONNS" \
    cargo bench --quiet --bench end_to_end 2>&1 | grep -v '^ *Running')

echo "== 2. $CONNS active connections, built-in closed loop, ${SECONDS_ACTIVE} s"
(cd "$here" && BENCH_CONNECTIONS="$CONNS" BENCH_SECONDS="$SECONDS_ACTIVE" \
    BENCH_WARMUP_SECONDS=2 cargo bench --quiet --bench end_to_end 2>&1 | grep -v '^ *Running')

echo "== 3. $CONNS active connections, percore-load max, ${SECONDS_ACTIVE} s"
if [[ ! -x "$PERCORE_LOAD_BIN" ]]; then
    echo "skipped: $PERCORE_LOAD_BIN not found"
    exit 0
fi
port=""
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
while :; do
    port=$(( 20000 + RANDOM % 20000 ))
    ss -Htln "sport = :$port" | grep -q . || break
done
HOST=127.0.0.1 PORT="$port" RUST_LOG=warn "$PERCORE_BIN" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/api/health" && break
    sleep 0.05
done
# Criteria that do not apply to a 10k-connection run (fds, CPU) are opened
# wide; success rate must be 100 %. Exit code 99 = a criterion failed.
rc=0
prlimit --nofile="$hard" "$PERCORE_LOAD_BIN" max --connections "$CONNS" --ids 100 \
    --duration "${SECONDS_ACTIVE}s" --url "http://127.0.0.1:$port" --pid "$pid" \
    --max-fds 100000 --max-cpu-pct 100 --max-p95-ms 5000 --max-p99-ms 5000 \
    --min-success-pct 99.999 || rc=$?
echo "percore-load exit code: $rc (0: every criterion held)"
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
