#!/usr/bin/env bash
# Slow clients: legitimate clients' latency and the server's memory while
# attackers hold connections open (slowloris) or read responses slowly.
#
# One percore on a free loopback port; in each phase, legitimate load is
# `percore-load rate --rate RATE --connections LEGIT_CONNECTIONS` (open loop,
# latency from the intended send time) for DURATION, and the server's open
# connections, RSS and fds are read from /api/metrics (and the bytes the
# kernel still holds unsent on the server's sockets, from `ss`):
#
#   a  baseline: no attacker.
#   b  SLOWLORIS_CONNS slowloris connections (`slowhttptest -H`: a request
#      head that never ends, one more header line every SLOWLORIS_INTERVAL
#      s). The legit run starts once the server's connections.active shows
#      them all open.
#   b' (no legit load) HEADERS_TIMEOUT + 3 s after the last slowloris
#      connection opened: how many the server still holds (its headers timeout,
#      66 s by default, answers 408 and closes them). HOLD_WAIT=0 skips it.
#   c  SLOW_READERS slow readers (`slowhttptest -X`): each pipelines
#      SLOW_READ_PIPELINE requests for SLOW_READ_PATH (the 29.6 kB dashboard
#      page by default), advertises a TCP window of 512-1024 bytes and reads
#      32 bytes every 5 s. Legit run once they are all open and SETTLE s later.
#   c' (no legit load) KEEP_ALIVE_TIMEOUT + 3 s after the last slow reader
#      opened: how many the server still holds. HOLD_WAIT=0 skips it.
#   d  after the attackers stopped, SETTLE s later: is the RSS back?
#   REPEAT=N runs b to d N times (b1, c1, d1, b2, ...): does the RSS grow
#   from one attack to the next?
#
# Each phase fails (exit 1) rather than measure fewer attackers than asked;
# "attackers" in the table is connections.active minus the metrics request,
# read just before and just after the legit run (legit connections closed).
#
# Needs: target/release/percore and percore-load (cargo build --release),
# slowhttptest (Debian package), curl, python3, ss (iproute2). A hard fd
# limit above SLOWLORIS_CONNS + 200: the server and the attackers each run
# with `ulimit -n` raised to the hard limit (the server derives its connection
# cap from it; slowhttptest caps its connections at its own limit), and
# enough ephemeral ports (net.ipv4.ip_local_port_range) for the attackers.
# Installs nothing; stops every process it started on exit.
#
# Usage:  cargo build --release && benches/slow_clients.sh
# Env:    PORT (default: the first free one in 4100-4899), WORKERS (default:
#         every core), RATE=1000, LEGIT_CONNECTIONS=100, DURATION=20 (s),
#         SLOWLORIS_CONNS=10000, SLOWLORIS_RATE=2000 (connections/s),
#         SLOWLORIS_INTERVAL=10 (s), SLOW_READERS=1000, SLOW_READ_RATE=200,
#         SLOW_READ_PATH=/dashboard, SLOW_READ_PIPELINE=3, SETTLE=5 (s),
#         HEADERS_TIMEOUT=66, KEEP_ALIVE_TIMEOUT=65 (s, the server's defaults),
#         HOLD_WAIT=1, REPEAT=1,
#         OPEN_TIMEOUT=90 (s to wait for the attackers' connections),
#         OUT_DIR (keep the JSON reports and attacker logs there),
#         PERCORE_BIN, PERCORE_LOAD_BIN.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
PERCORE_BIN="${PERCORE_BIN:-$target/release/percore}"
PERCORE_LOAD_BIN="${PERCORE_LOAD_BIN:-$target/release/percore-load}"
RATE="${RATE:-1000}"
LEGIT_CONNECTIONS="${LEGIT_CONNECTIONS:-100}"
DURATION="${DURATION:-20}"
SLOWLORIS_CONNS="${SLOWLORIS_CONNS:-10000}"
SLOWLORIS_RATE="${SLOWLORIS_RATE:-2000}"
SLOWLORIS_INTERVAL="${SLOWLORIS_INTERVAL:-10}"
SLOW_READERS="${SLOW_READERS:-1000}"
SLOW_READ_RATE="${SLOW_READ_RATE:-200}"
SLOW_READ_PATH="${SLOW_READ_PATH:-/dashboard}"
SLOW_READ_PIPELINE="${SLOW_READ_PIPELINE:-3}"
SETTLE="${SETTLE:-5}"
HEADERS_TIMEOUT="${HEADERS_TIMEOUT:-66}"
KEEP_ALIVE_TIMEOUT="${KEEP_ALIVE_TIMEOUT:-65}"
HOLD_WAIT="${HOLD_WAIT:-1}"
REPEAT="${REPEAT:-1}"
OPEN_TIMEOUT="${OPEN_TIMEOUT:-90}"
# The attackers run at most this long; they are stopped after their phase.
ATTACK_SECONDS=600

die() { echo "slow_clients: $*" >&2; exit 1; }
for bin in "$PERCORE_BIN" "$PERCORE_LOAD_BIN"; do
    [[ -x "$bin" ]] || die "$bin not found: cargo build --release"
done
for tool in slowhttptest curl python3 ss; do
    command -v "$tool" >/dev/null || die "$tool not found (slowhttptest: apt-get install slowhttptest)"
done
hard="$(ulimit -Hn)"
[[ "$hard" == unlimited ]] && hard=1048576
(( SLOWLORIS_CONNS + 200 <= hard && SLOW_READERS + 200 <= hard )) ||
    die "the hard fd limit ($hard) is too low for $SLOWLORIS_CONNS connections"
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
(( SLOWLORIS_CONNS + LEGIT_CONNECTIONS + 100 <= port_hi - port_lo + 1 )) ||
    die "ephemeral port range $port_lo-$port_hi is too small for $SLOWLORIS_CONNS connections"

free_port() {
    local p
    for p in $(seq 4100 4899); do
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
    die "no free port in 4100-4899"
}
PORT="${PORT:-$(free_port)}"
url="http://127.0.0.1:$PORT"

tmp="$(mktemp -d /tmp/percore-slow-clients.XXXXXX)"
server_pid=""
attacker_pid=""
stop() { # pid
    [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    stop "$attacker_pid"
    stop "$server_pid"
    if [[ -n "${OUT_DIR:-}" ]]; then mkdir -p "$OUT_DIR" && cp -r "$tmp"/. "$OUT_DIR"/; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# "active rss_bytes fds" from /api/metrics; active excludes this request.
metrics() {
    curl -sf -m 10 "$url/api/metrics" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["connections"]["active"] - 1, d["memory"]["rss"], d["fds"]["open"])'
}
active() { local a _r _f; read -r a _r _f < <(metrics); echo "$a"; }
# Bytes written by the server that the kernel has not yet delivered (Send-Q).
unsent() { ss -Htn state established "sport = :$PORT" | awk '{s += $2} END {print s + 0}'; }

# Runs an attacker in the background with its own raised fd limit.
attack() { # name args...
    local name=$1; shift
    (ulimit -n "$hard"; exec slowhttptest "$@") >"$tmp/$name.log" 2>&1 </dev/null &
    attacker_pid=$!
}
# Waits until the server holds at least $1 connections besides the sampler.
wait_open() { # want what
    local want=$1 what=$2 a=0 start=$SECONDS
    while (( SECONDS - start < OPEN_TIMEOUT )); do
        a="$(active)"
        (( a >= want )) && { echo "  $what: $a connections open on the server after $(( SECONDS - start )) s"; return; }
        kill -0 "$attacker_pid" 2>/dev/null || break
        sleep 1
    done
    echo "--- last lines of slowhttptest's output:" >&2
    tail -c 1500 "$tmp/$what.log" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' >&2
    die "$what: only $a of $want connections open on the server after $(( SECONDS - start )) s"
}

rows=()
# One legit run; appends a table row.
phase() { # label
    local label=$1 a0 a1 r1 f1 q json="$tmp/legit-$1.json"
    read -r a0 _ _ < <(metrics)
    "$PERCORE_LOAD_BIN" rate --url "$url" --rate "$RATE" --connections "$LEGIT_CONNECTIONS" \
        --duration "${DURATION}s" --json "$json" >"$tmp/legit-$label.log" 2>&1 || true
    [[ -s "$json" ]] || { cat "$tmp/legit-$label.log" >&2; die "percore-load wrote no report"; }
    sleep 0.5
    q="$(unsent)"
    read -r a1 r1 f1 < <(metrics)
    rows+=("$(python3 - "$json" "$label" "$a0" "$a1" "$r1" "$f1" "$q" <<'EOF'
import json, sys
path, label, a0, a1, rss, fds, unsent = sys.argv[1:]
d = json.load(open(path))
s, lat = d["summary"], d["latency_ms"]
errs = d["errors"]
non2xx = sum(n for c, n in d["status_codes"].items() if not c.startswith("2"))
server = d.get("server") or []
peak_rss = max([x["rss_bytes"] for x in server] + [int(rss)])
peak_fds = max([x["fds_open"] for x in server] + [int(fds)])
err = sum(errs.values()) + non2xx
detail = ", ".join(f"{k} {v}" for k, v in errs.items() if v)
detail += (", " if detail and non2xx else "") + (f"non-2xx {non2xx}" if non2xx else "")
print("\t".join([label, f"{int(a0):,} → {int(a1):,}", f"{s['rps']:,.0f}",
                 f"{lat['p50']:.3f}", f"{lat['p99']:.3f}",
                 f"{err}" + (f" ({detail})" if detail else ""),
                 f"{peak_rss / 2**20:.1f} / {int(rss) / 2**20:.1f}",
                 f"{peak_fds:,} / {int(fds):,}", f"{int(unsent) / 2**20:.1f}"]))
EOF
)")
    echo "  $label: $(tr '\t' '|' <<<"${rows[-1]}")   (load $(loadavg))"
}
# A row without legit load.
sample_row() { # label
    local a r f q
    q="$(unsent)"
    read -r a r f < <(metrics)
    rows+=("$(python3 -c 'import sys; l, a, r, f, q = sys.argv[1:]
print(f"{l}\t{int(a):,}\t—\t—\t—\t—\t{int(r) / 2**20:.1f}\t{int(f):,}\t{int(q) / 2**20:.1f}")' \
        "$1" "$a" "$r" "$f" "$q")")
    echo "  $1: $(tr '\t' '|' <<<"${rows[-1]}")   (load $(loadavg))"
}

echo "slow clients against percore on $url: $(nproc) cores, fd limit $hard, load now $(loadavg)"
echo "legit: percore-load rate --rate $RATE --connections $LEGIT_CONNECTIONS --duration ${DURATION}s"
(
    ulimit -n "$hard"
    exec env ${WORKERS:+WORKERS="$WORKERS"} "$PERCORE_BIN" --host 127.0.0.1 --port "$PORT"
) >"$tmp/server.log" 2>&1 </dev/null &
server_pid=$!
for _ in $(seq 100); do curl -sf -m 1 "$url/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf -m 1 "$url/api/health" >/dev/null || { cat "$tmp/server.log" >&2; die "percore did not start"; }
grep -o 'shards=[0-9]* .*max_connections=[0-9]*' "$tmp/server.log" | head -1 | sed 's/^/server: /'

echo "== a  baseline"
phase a

for round in $(seq "$REPEAT"); do
n=""; (( REPEAT > 1 )) && n="$round"
echo "== b$n  $SLOWLORIS_CONNS slowloris connections"
attack slowloris -H -c "$SLOWLORIS_CONNS" -r "$SLOWLORIS_RATE" -i "$SLOWLORIS_INTERVAL" \
    -l "$ATTACK_SECONDS" -p 3 -u "$url/api/data/x"
wait_open "$SLOWLORIS_CONNS" slowloris
all_open=$SECONDS
phase "b$n"
if (( HOLD_WAIT )); then
    left=$(( HEADERS_TIMEOUT + 3 - (SECONDS - all_open) ))
    (( left > 0 )) && { echo "  waiting $left s for the server's headers timeout"; sleep "$left"; }
    sample_row "b$n'"
fi
stop "$attacker_pid"; attacker_pid=""

echo "== c$n  $SLOW_READERS slow readers"
sleep "$SETTLE"
attack slowread -X -c "$SLOW_READERS" -r "$SLOW_READ_RATE" -w 512 -y 1024 -n 5 -z 32 \
    -k "$SLOW_READ_PIPELINE" -l "$ATTACK_SECONDS" -p 3 -u "$url$SLOW_READ_PATH"
wait_open "$SLOW_READERS" slowread
all_open=$SECONDS
sleep "$SETTLE"
phase "c$n"
if (( HOLD_WAIT )); then
    left=$(( KEEP_ALIVE_TIMEOUT + 3 - (SECONDS - all_open) ))
    (( left > 0 )) && { echo "  waiting $left s for the server's keep-alive timeout"; sleep "$left"; }
    sample_row "c$n'"
fi
stop "$attacker_pid"; attacker_pid=""

echo "== d$n  after the attackers stopped"
sleep "$SETTLE"
phase "d$n"
done

echo
echo "load average at the end: $(loadavg)"
echo "| phase | attackers' connections on the server (start → end) | legit req/s | p50 ms | p99 ms | errors | server RSS MiB (peak / end) | fds (peak / end) | unsent MiB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for r in "${rows[@]}"; do
    echo "| $(sed 's/\t/ | /g' <<<"$r") |"
done
if ! kill -0 "$server_pid" 2>/dev/null; then
    die "the server exited during the run (see its log)"
fi
if grep -qi 'panic' "$tmp/server.log"; then
    echo "server log mentions a panic:" >&2; grep -i panic "$tmp/server.log" >&2
fi
