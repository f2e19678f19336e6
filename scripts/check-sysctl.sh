#!/usr/bin/env bash
# Verifies that every key of sysctl.conf exists on the running kernel, so the
# file never ships a key that `sysctl -p` would reject. Reads only: nothing is
# applied. Also prints the current value next to the recommended one.
set -euo pipefail
cd "$(dirname "$0")/.."
conf=${1:-sysctl.conf}

echo "== sysctl keys of $conf on kernel $(uname -r)"
missing=0
count=0
while IFS= read -r line; do
  # Skip comments and blank lines; a setting is `key = value`.
  [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
  if [[ ! $line =~ ^[[:space:]]*([a-z0-9_.-]+)[[:space:]]*=[[:space:]]*(.+)$ ]]; then
    echo "FAIL: not a 'key = value' line: $line"
    missing=$((missing + 1))
    continue
  fi
  key=${BASH_REMATCH[1]}
  want=${BASH_REMATCH[2]}
  count=$((count + 1))
  if have=$(sysctl -n "$key" 2>/dev/null); then
    printf '  ok  %-32s now: %-16s recommended: %s\n' "$key" "${have//$'\t'/ }" "$want"
  else
    echo "FAIL: $key does not exist on this kernel"
    missing=$((missing + 1))
  fi
done <"$conf"

if [ "$count" -eq 0 ]; then
  echo "FAIL: no settings found in $conf"
  exit 1
fi
if [ "$missing" -gt 0 ]; then
  echo "== sysctl: $missing problem(s) in $conf"
  exit 1
fi
echo "== sysctl: all $count keys exist"
