#!/usr/bin/env bash
# Coverage-guided fuzzing of the request path with AFL++, on stable Rust
# (`cargo-afl`). The targets and their invariants are `percore::fuzz`'s, the
# same that `tests/fuzz.rs` runs deterministically in CI; the seed corpus is
# `fuzz/corpus/` (every request literal of the tests), the dictionary
# `http.dict` (the tokens the parser branches on). A panic is a finding:
# AFL++ keeps its input under `out/<target>/default/crashes/`.
#
# Usage:  fuzz/afl/run.sh [TARGET] [SECONDS]
#         TARGET   parse_head, body or connection (default: connection, the
#                  whole path: a byte stream split into reads by its first
#                  8 bytes, through the reader the connection task runs)
#         SECONDS  how long to fuzz (default 600)
# Env:    AFL_OUT  where AFL++ writes (default fuzz/afl/out/<target>)
# Needs:  cargo install cargo-afl && cargo afl config --build (AFL++, once,
#         a few minutes). Prints the run's figures from fuzzer_stats.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
target="${1:-connection}"
seconds="${2:-600}"
case "$target" in
    parse_head | body | connection) ;;
    *) echo "TARGET must be parse_head, body or connection" >&2; exit 2 ;;
esac
command -v cargo-afl >/dev/null || { echo "cargo-afl not found: cargo install cargo-afl" >&2; exit 1; }
cargo afl build --release
out="${AFL_OUT:-out/$target}"
mkdir -p "$out"
# No CPU-frequency or core-pattern tuning on a shared machine: run as is.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
FUZZ_TARGET="$target" cargo afl fuzz -V "$seconds" -i ../corpus -x http.dict -o "$out" \
    target/release/request_path >"$out/afl.log" 2>&1 || {
    tail -20 "$out/afl.log" >&2
    exit 1
}
stats="$out/default/fuzzer_stats"
echo "$target, ${seconds} s:"
grep -E '^(execs_done|execs_per_sec|corpus_count|bitmap_cvg|saved_crashes|saved_hangs|stability) ' "$stats"
crashes=$(awk '$1 == "saved_crashes" {print $3}' "$stats")
[[ "$crashes" == 0 ]] || { echo "findings in $out/default/crashes/" >&2; exit 1; }
