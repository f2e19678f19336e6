#!/usr/bin/env bash
# The dashboard in a real browser: installs Debian's chromium when it is
# missing, builds the release binaries, and runs scripts/dashboard_browser.py,
# which loads /dashboard in headless Chromium under load and checks the page's
# figures against /api/metrics and the load sent (about 35 s).
#
#   scripts/dashboard-test.sh
#   scripts/dashboard-test.sh --screenshot docs/dashboard.png   # the README's picture
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# Text in the screenshots needs a font; chromium pulls none in without
# recommends.
fc-list 2>/dev/null | grep -qi dejavu || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
chromium --version

cargo build --release --bins
python3 scripts/dashboard_browser.py --bin target/release "$@"
