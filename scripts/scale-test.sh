#!/usr/bin/env bash
# Proves the scale-out set-up with the real pieces, on this machine's
# loopback: three percore instances behind HAProxy (Debian's package, with
# deploy/haproxy/haproxy.cfg as shipped), and percore-load through it.
#
#   1. Rolling restart under load: 100 clients loop (percore-load soak, 10 ms
#      think time) while each instance in turn gets SIGTERM, must exit 0, and
#      is replaced by a new one on the same port, which must come back up in
#      HAProxy before the next one goes. Required: zero failed requests of
#      any kind (connect errors, resets, timeouts, non-2xx) and exit 0 from
#      every instance.
#   2. Cache locality: a key space larger than one instance's cache (IDS
#      2,400 ids, CACHE_CAPACITY 1,000 per instance), first with the shipped
#      `balance uri` + `hash-type consistent`, then with `balance roundrobin`
#      (the one line changed); the hit rate of a warm run, from each
#      instance's own /api/metrics. Required: >= 90 % with hashing, and below
#      that with round-robin.
#   3. Cost of the hop: percore-load straight at one instance against the same
#      instance through HAProxy (all three server lines pointing at it):
#      closed-loop req/s and p99, the p99 at the seed's rate (1,000 req/s),
#      and HAProxy's CPU per request.
#
# Ends with one summary line; exits 1 when a requirement fails.
# Knobs: ROLL_DURATION (35s), IDS (2400), CACHE_CAPACITY (1000),
# HOP_DURATION (5s), HOP_ROUNDS (1), SEED_RATE (1000); KEEP_WORK=1 keeps the
# logs and JSON reports.
# Needs haproxy (installed from Debian's package when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

ROLL_DURATION=${ROLL_DURATION:-35s}
IDS=${IDS:-2400}
CACHE_CAPACITY=${CACHE_CAPACITY:-1000}
HOP_DURATION=${HOP_DURATION:-5s}
HOP_ROUNDS=${HOP_ROUNDS:-1}
SEED_RATE=${SEED_RATE:-1000}

started=$(date +%s)
step() { echo "== $* (+$(($(date +%s) - started))s)"; }
failures=()
require() { # condition-as-python-expression, message
  if python3 -c "import sys; sys.exit(0 if ($1) else 1)"; then
    echo "ok: $2"
  else
    echo "FAIL: $2"
    failures+=("$2")
  fi
}

work=$(mktemp -d)
declare -a pids=() ports=()
haproxy_pid=""

cleanup() {
  set +e
  [ -n "$haproxy_pid" ] && kill "$haproxy_pid" 2>/dev/null
  for p in "${pids[@]}"; do
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
  done
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "logs and reports kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---- tools ------------------------------------------------------------------
if ! command -v haproxy >/dev/null 2>&1; then
  step "installing Debian's haproxy"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The package's service is not started in a container without systemd;
  # policy-rc.d keeps it from starting where there is one.
  apt-get install -y -qq --no-install-recommends haproxy >/dev/null
fi
haproxy -v | sed -n 1p
step "build the release binaries"
cargo build --release --quiet --bin percore --bin percore-load
load=./target/release/percore-load
ncpu=$(nproc)

# Free loopback ports, outside 3900-3999 (kept for other long runs).
free_port() {
  python3 - <<'PY'
import socket
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if not 3900 <= port <= 3999:
        print(port)
        break
PY
}
for i in 1 2 3; do ports[i]=$(free_port); done
lb_port=$(free_port)
stats_port=$(free_port)
lb_url="http://127.0.0.1:$lb_port"

# ---- instances ------------------------------------------------------------------
# One shard each (WORKERS=1), instance i pinned to core (i mod cores): with
# HAProxy picking a connection from its pool, the shard that serves an id
# inside an instance is arbitrary, so one shard per instance keeps the
# comparison about replicas. A long TTL keeps expiry out of the hit rates.
start_instance() { # i
  local i=$1
  taskset -c $((i % ncpu)) env WORKERS=1 CACHE_CAPACITY="$CACHE_CAPACITY" CACHE_TTL_MS=600000 \
    LOG_FORMAT=text RUST_LOG=info ./target/release/percore --host 127.0.0.1 --port "${ports[i]}" \
    >>"$work/percore-$i.log" 2>&1 &
  pids[i]=$!
  for _ in $(seq 1 100); do
    curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:${ports[i]}/api/health" 2>/dev/null && return 0
    kill -0 "${pids[i]}" 2>/dev/null || break
    sleep 0.05
  done
  tail -n 20 "$work/percore-$i.log"
  echo "FAIL: instance $i did not start"
  exit 1
}
# SIGTERM, then wait for the exit: sets stop_rc and stop_secs. (Not in a
# subshell: only this shell can wait for its children.)
stop_instance() { # i
  local i=$1 t0
  t0=$(date +%s.%N)
  kill -TERM "${pids[i]}"
  set +e
  wait "${pids[i]}"
  stop_rc=$?
  set -e
  pids[i]=""
  stop_secs=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
}

# ---- HAProxy ----------------------------------------------------------------------
# The shipped config; $1 = "hash" (as shipped) or "roundrobin" (one line
# changed); then the server addresses.
start_haproxy() { # mode s1 s2 s3
  local cfg=deploy/haproxy/haproxy.cfg
  if [ "$1" = roundrobin ]; then
    cfg="$work/haproxy-roundrobin.cfg"
    sed 's/^    balance uri$/    balance roundrobin/' deploy/haproxy/haproxy.cfg >"$cfg"
    grep -q '^    balance roundrobin$' "$cfg" || { echo "FAIL: no 'balance uri' line to change"; exit 1; }
  fi
  PERCORE_S1=$2 PERCORE_S2=$3 PERCORE_S3=$4 HAPROXY_BIND="127.0.0.1:$lb_port" \
    HAPROXY_STATS_BIND="127.0.0.1:$stats_port" haproxy -db -f "$cfg" >>"$work/haproxy.log" 2>&1 &
  haproxy_pid=$!
  for s in s1 s2 s3; do wait_server "$s" UP 10 || { tail -n 20 "$work/haproxy.log"; exit 1; }; done
}
stop_haproxy() { # between runs, when no request is in flight
  kill -TERM "$haproxy_pid" 2>/dev/null
  wait "$haproxy_pid" 2>/dev/null || true
  haproxy_pid=""
}
# One field of HAProxy's CSV stats for a server of backend percore.
server_stat() { # server field
  curl -fsS --max-time 2 "http://127.0.0.1:$stats_port/stats;csv" 2>/dev/null | python3 -c "
import csv, sys
rows = list(csv.reader(sys.stdin))
if not rows:
    sys.exit()
head = [h.lstrip('# ') for h in rows[0]]
for r in rows[1:]:
    d = dict(zip(head, r))
    if d.get('pxname') == 'percore' and d.get('svname') == '$1':
        print(d.get('$2', ''))
"
}
wait_server() { # server state seconds
  for _ in $(seq 1 $(($3 * 20))); do
    [ "$(server_stat "$1" status)" = "$2" ] && return 0
    sleep 0.05
  done
  echo "FAIL: HAProxy does not see $1 $2 within $3 s (status: $(server_stat "$1" status))"
  return 1
}

for i in 1 2 3; do start_instance "$i"; done
addr() { echo "127.0.0.1:${ports[$1]}"; }
step "3 instances (WORKERS=1, CACHE_CAPACITY=$CACHE_CAPACITY) on $(addr 1) $(addr 2) $(addr 3); HAProxy on :$lb_port"
start_haproxy hash "$(addr 1)" "$(addr 2)" "$(addr 3)"
echo "HAProxy sees s1 s2 s3 UP"

# A percore-load JSON report: requests, errors by kind, statuses, rps, p99.
report() { # file
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
errs = {k: v for k, v in r.get("errors", {}).items() if v}
print(f"{s['requests']} requests, {s['errors']} failed {errs or ''}, statuses {r.get('status_codes')}, "
      f"{s['rps']:.0f} req/s, p50 {r['latency_ms']['p50']:.2f} ms, p99 {r['latency_ms']['p99']:.2f} ms")
PY
}
field() { # file python-expression-on-r
  python3 -c "import json, sys; r = json.load(open(sys.argv[1])); print($2)" "$1"
}
# Failed requests of any kind: every request without a 2xx answer
# (connect errors, resets, timeouts, protocol errors, non-2xx), and never
# fewer than percore-load's own error count.
failed() { # file
  field "$1" "max(r['summary']['errors'], r['summary']['requests'] - sum(v for k, v in r.get('status_codes', {}).items() if str(k).startswith('2')))"
}

# ---- 1. rolling restart under load ----------------------------------------------------
step "rolling restart under 100 looping clients (percore-load soak, $ROLL_DURATION)"
$load soak --url "$lb_url" --clients 100 --think 10ms --duration "$ROLL_DURATION" --window 0 \
  --no-server-metrics --json "$work/roll.json" >"$work/roll.out" 2>&1 &
load_pid=$!
sleep 3
exits=()
for i in 1 2 3; do
  stop_instance "$i"
  exits+=("$stop_rc")
  echo "s$i: SIGTERM -> exit $stop_rc after ${stop_secs}s"
  start_instance "$i"
  t0=$(date +%s.%N)
  wait_server "s$i" UP 15 || failures+=("s$i did not come back UP in HAProxy")
  echo "s$i: new instance (pid ${pids[i]}) on the same port, UP in HAProxy after $(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")s"
  sleep 1
done
kill -0 "$load_pid" 2>/dev/null && roll_in_time=1 || roll_in_time=0
set +e
wait "$load_pid"
load_rc=$?
set -e
echo "percore-load exit $load_rc; $(report "$work/roll.json")"
roll_requests=$(field "$work/roll.json" "r['summary']['requests']")
roll_failed=$(failed "$work/roll.json")
retries=$(server_stat BACKEND wretr)
redispatches=$(server_stat BACKEND wredis)
echo "HAProxy: $retries retries, $redispatches redispatches to another server (none seen by a client)"
grep -c 'percore/' "$work/haproxy.log" | sed 's/^/HAProxy log lines for anomalies (errors, retries, redispatches): /' || true
require "$roll_in_time == 1" "all three restarts happened while the clients were looping"
require "$roll_requests > 0 and $roll_failed == 0" "zero failed requests through the rolling restart ($roll_failed of $roll_requests)"
require "'${exits[*]}' == '0 0 0'" "every instance exited 0 on SIGTERM (${exits[*]})"

# ---- 2. cache locality -------------------------------------------------------------------
cache_counts() { # -> "hits misses size" summed over the instances, plus sizes
  local h=0 m=0 sizes=""
  for i in 1 2 3; do
    read -r hi mi si < <(curl -fsS --max-time 2 "http://$(addr "$i")/api/metrics" |
      python3 -c "import json, sys; c = json.load(sys.stdin)['cache']; print(c['hits'], c['misses'], c['size'])")
    h=$((h + hi)); m=$((m + mi)); sizes="$sizes $si"
  done
  echo "$h $m$sizes"
}
# The hit rate of a warm run through HAProxy in `mode`, in %: sets hit_pct.
hit_rate() { # mode
  local mode=$1 before after
  stop_haproxy
  for i in 1 2 3; do # fresh instances: empty caches
    stop_instance "$i"
    [ "$stop_rc" = 0 ] || failures+=("instance $i exited $stop_rc before the $mode run")
    start_instance "$i"
  done
  start_haproxy "$mode" "$(addr 1)" "$(addr 2)" "$(addr 3)"
  $load rate --url "$lb_url" --rate 2000 --connections 100 --ids "$IDS" --duration 3s \
    --no-server-metrics --json "$work/warm-$mode.json" >/dev/null 2>&1 || true
  read -r -a before < <(cache_counts)
  $load rate --url "$lb_url" --rate 2000 --connections 100 --ids "$IDS" --duration 6s \
    --no-server-metrics --json "$work/cache-$mode.json" >/dev/null 2>&1 || true
  read -r -a after < <(cache_counts)
  local hits=$((after[0] - before[0])) misses=$((after[1] - before[1]))
  echo "$mode: $(report "$work/cache-$mode.json")"
  echo "$mode: warm run $hits hits, $misses misses; ids cached per instance:${after[*]:2}"
  [ "$(failed "$work/cache-$mode.json")" = 0 ] || failures+=("failed requests in the $mode cache run")
  hit_pct=$(python3 -c "print(f'{100 * $hits / max(1, $hits + $misses):.1f}')")
}
step "cache locality: $IDS ids, $CACHE_CAPACITY cached per instance, rate 2000/s (3 s warm-up, 6 s measured)"
hit_rate hash
hash_pct=$hit_pct
hit_rate roundrobin
rr_pct=$hit_pct
echo "hit rate: balance uri + consistent hash $hash_pct %, round-robin $rr_pct %"
require "$hash_pct >= 90" "hit rate with URI hashing >= 90 % ($hash_pct %)"
require "$rr_pct < $hash_pct" "round-robin hits less than hashing ($rr_pct % < $hash_pct %)"

# ---- 3. cost of the hop ----------------------------------------------------------------------
step "cost of the hop: instance 1 direct vs through HAProxy (all servers -> instance 1)"
stop_haproxy
start_haproxy hash "$(addr 1)" "$(addr 1)" "$(addr 1)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
for round in $(seq 1 "$HOP_ROUNDS"); do
  for via in direct haproxy; do
    url="http://$(addr 1)"
    [ "$via" = haproxy ] && url=$lb_url
    h0=$(cpu_ticks "$haproxy_pid")
    $load max --url "$url" --connections 100 --ids 100 --duration "$HOP_DURATION" \
      --no-server-metrics --json "$work/max-$via-$round.json" >/dev/null 2>&1 || true
    h1=$(cpu_ticks "$haproxy_pid")
    n=$(field "$work/max-$via-$round.json" "r['summary']['requests']")
    echo "max  $via (round $round): $(report "$work/max-$via-$round.json")"
    if [ "$via" = haproxy ]; then
      echo "     HAProxy CPU: $(python3 -c "print(f'{($h1 - $h0) / $tck * 1e6 / max(1, $n):.1f}')") us per request"
    fi
    $load rate --url "$url" --rate "$SEED_RATE" --connections 100 --ids 100 --duration "$HOP_DURATION" \
      --no-server-metrics --json "$work/rate-$via-$round.json" >/dev/null 2>&1 || true
    echo "rate $via (round $round): $(report "$work/rate-$via-$round.json")"
    for f in "$work/max-$via-$round.json" "$work/rate-$via-$round.json"; do
      [ "$(failed "$f")" = 0 ] || failures+=("failed requests in the hop run $(basename "$f")")
    done
  done
done
hop=$(python3 - "$work" "$HOP_ROUNDS" <<'PY'
import json, sys, statistics as st
w, n = sys.argv[1], int(sys.argv[2])
def med(kind, via, key):
    vals = []
    for i in range(1, n + 1):
        r = json.load(open(f"{w}/{kind}-{via}-{i}.json"))
        vals.append(r["summary"]["rps"] if key == "rps" else r["latency_ms"][key])
    return st.median(vals)
print(f"max direct {med('max','direct','rps')/1000:.1f}k req/s p99 {med('max','direct','p99'):.2f} ms, "
      f"via HAProxy {med('max','haproxy','rps')/1000:.1f}k req/s p99 {med('max','haproxy','p99'):.2f} ms; "
      f"at {int(json.load(open(f'{w}/rate-direct-1.json'))['summary']['rps'] + 0.5)} req/s p50/p99 "
      f"direct {med('rate','direct','p50'):.2f}/{med('rate','direct','p99'):.2f} ms, "
      f"via HAProxy {med('rate','haproxy','p50'):.2f}/{med('rate','haproxy','p99'):.2f} ms")
PY
)
stop_haproxy

# ---- the end -------------------------------------------------------------------------------------
step "SIGTERM to every instance"
final=()
for i in 1 2 3; do stop_instance "$i"; final+=("$stop_rc"); done
require "'${final[*]}' == '0 0 0'" "every instance exited 0 at the end (${final[*]})"

verdict=PASS
[ ${#failures[@]} -eq 0 ] || verdict=FAIL
echo "scale-test: $verdict in $(($(date +%s) - started)) s | rolling restart: $roll_requests requests, $roll_failed failed," \
  "exits ${exits[*]}, HAProxy retries $retries, redispatches $redispatches | hit rate: hash $hash_pct %, round-robin $rr_pct % ($IDS ids," \
  "$CACHE_CAPACITY per instance) | hop: $hop"
if [ "$verdict" = FAIL ]; then
  printf 'failed: %s\n' "${failures[@]}"
  echo "--- haproxy log"; tail -n 30 "$work/haproxy.log"
  for i in 1 2 3; do echo "--- percore $i log"; tail -n 10 "$work/percore-$i.log"; done
  exit 1
fi
