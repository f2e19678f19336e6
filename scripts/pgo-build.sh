#!/usr/bin/env bash
# A profile-guided build of percore: an instrumented build serves a training
# load, LLVM merges what it counted, and the release build is compiled again
# with those counts (hot code laid out together, branches ordered by what a
# server under load takes). The result is target/pgo/release/percore; the
# default `cargo build --release` is untouched. docs/performance.md has what
# it changed ("A profile-guided build").
#
# The training load is percore-load's: an open loop at 1,000 and 10,000
# req/s and a closed loop, over 100 keep-alive connections, cache hits and
# misses, plus the health and metrics endpoints. Two workers, as served.
#
# Needs: the Rust toolchain's llvm-tools (`rustup component add llvm-tools`:
# its llvm-profdata reads the profiles this rustc writes; a distribution's
# LLVM of another version does not). About two release builds of time.
#
#   scripts/pgo-build.sh
#   target/pgo/release/percore          # serve with it
#
# The merged profile is kept in pgo/percore.profdata, with the `rustc -vV` of
# the compiler that wrote it beside it (pgo/percore.profdata.rustc): the
# Dockerfile builds the image with it when asked
# (`docker build --build-arg PGO_PROFILE=pgo/percore.profdata .`).
set -euo pipefail
. "$(dirname "$0")/lib/start-percore.sh"
cd "$(dirname "$0")/.."

sysroot=$(rustc --print sysroot)
profdata="$sysroot/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  echo "llvm-profdata not found in the toolchain: rustup component add llvm-tools" >&2
  exit 1
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== instrumented build (target/pgo-gen)"
RUSTFLAGS="-Cprofile-generate=$work/raw" \
  cargo build --release --quiet --target-dir target/pgo-gen --bin percore
cargo build --release --quiet --bin percore-load

echo "== training load"
LLVM_PROFILE_FILE="$work/raw/percore-%p-%m.profraw" WORKERS=2 PERCORE_BIN=target/pgo-gen/release/percore \
  start_percore "$work/server.log"
url="http://127.0.0.1:$port"
load=target/release/percore-load
$load rate --url "$url" --rate 1000 --duration 8s --no-server-metrics >/dev/null
$load rate --url "$url" --rate 10000 --duration 8s --no-server-metrics >/dev/null
$load max --url "$url" --duration 8s --no-server-metrics >/dev/null
# Misses: more ids than a shard's cache holds.
$load rate --url "$url" --rate 3000 --ids 5000 --duration 4s --no-server-metrics >/dev/null
for path in /api/health /api/metrics /metrics; do
  curl -fsS "$url$path" >/dev/null
done
# The profile is written when the process exits: a graceful stop.
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=""

echo "== merge: $(ls "$work"/raw/percore-*.profraw | wc -l) profiles"
mkdir -p pgo
"$profdata" merge -o pgo/percore.profdata "$work"/raw/percore-*.profraw
# LLVM reads only the profile format of its own version: whoever uses the
# profile (the Dockerfile) checks that it runs this compiler.
rustc -vV >pgo/percore.profdata.rustc

echo "== optimised build (target/pgo)"
RUSTFLAGS="-Cprofile-use=$(pwd)/pgo/percore.profdata -Cllvm-args=-pgo-warn-missing-function=false" \
  cargo build --release --quiet --target-dir target/pgo --bin percore
echo "target/pgo/release/percore"
