#!/usr/bin/env bash
# Instructions per cache-hit response (`response/hit` of benches/hot_path.rs),
# counted with callgrind: a count that does not depend on the machine's load,
# unlike criterion's wall-clock figure on a shared machine.
#
# `hot_path::write_hit` is out of line on purpose: callgrind reports its
# inclusive instruction count (Ir) and how many times it was called, and
# their ratio is the cost of one response, whatever the iteration count.
# Give several bench binaries (copies built from different commits) to
# compare them in one run; they are measured in turn, twice, alternating.
#
# Usage:  cargo bench --bench hot_path --no-run   # prints the binary's path
#         cp target/release/deps/hot_path-<hash> /tmp/hot_path_new
#         benches/instructions.sh /tmp/hot_path_old /tmp/hot_path_new
# Env:    ROUNDS=2          passes over the binaries
#         BENCH=response/hit  criterion filter
#         FUNCTION=hot_path::write_hit  the out-of-line function to count
#         (e.g. BENCH=parse/wrk_get FUNCTION=percore::http::request::parse_head
#         counts one request head's parse)
# Needs: valgrind (callgrind, callgrind_annotate). Installs nothing.
set -euo pipefail

ROUNDS=${ROUNDS:-2}
BENCH=${BENCH:-response/hit}
FUNCTION=${FUNCTION:-hot_path::write_hit}
[ $# -ge 1 ] || { echo "usage: $0 BENCH_BINARY..." >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        file="$out/callgrind.$round.$(basename "$bin")"
        valgrind --tool=callgrind --callgrind-out-file="$file" \
            "$bin" --bench --profile-time 2 "$BENCH" >/dev/null 2>&1
        # The caller tree lists the calls into FUNCTION ("(N x)") on the
        # lines above its own inclusive total ("*  file:FUNCTION"). Code that
        # callgrind attributes to other files (inlined callees) makes more
        # entries of the same name, nested in the outermost one: the entry
        # with the largest total is the whole function.
        callgrind_annotate --inclusive=yes --tree=caller "$file" 2>/dev/null |
            awk -v f="$FUNCTION" -v bin="$bin" -v round="$round" '
                function end_block() {
                    if (ir > best) { best = ir; best_calls = calls }
                    ir = 0; calls = 0
                }
                /^$/ { end_block() }
                /</ && index($0, f) == 0 && match($0, /\(([0-9,]+)x\)/) {
                    n = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", n); calls += n
                }
                /\*  / && (index($0, ":" f " [") || substr($0, length($0) - length(f)) == ":" f) {
                    ir = $1; gsub(",", "", ir); ir += 0
                }
                END {
                    end_block()
                    printf "round %s  %s  %s: %d Ir / %d calls = %.1f Ir per call\n",
                        round, bin, f, best, best_calls, best_calls ? best / best_calls : 0
                }'
    done
done
