#!/usr/bin/env bash
# Offline checks of the scale-out deployment files; no cluster needed.
#   - `kubectl kustomize` renders deploy/kubernetes (the app) and its two
#     side kustomizations, seccomp/ (the io_uring profile on every node) and
#     k6/ (the seed's k6 script as a Job);
#   - every rendered object validates against the Kubernetes API schema of
#     each version in KUBE_VERSIONS (PyPI's kubernetes-validate, --strict: an
#     unknown or misplaced field is an error). Default: 1.35.0 and 1.37.0, the
#     oldest and the newest minor the project still maintains;
#   - the copies of k6-load-test.js and seccomp-io_uring.json that the
#     kustomizations need below their own directories equal the originals;
#   - HAProxy accepts deploy/haproxy/haproxy.cfg (`haproxy -c`);
#   - docker-compose accepts docker-compose.yml with the profile `scale`
#     (no Docker engine needed).
#
# Installs what is missing: Debian's kubernetes-client (kubectl), haproxy and
# docker-compose with apt, kubernetes-validate with pip. Takes a few seconds
# once installed.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSIONS=${KUBE_VERSIONS:-"1.35.0 1.37.0"}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

need_apt=()
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  echo "installing kubernetes-validate (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi
echo "kubectl $(kubectl version --client 2>/dev/null | sed -n 's/.*GitVersion:"\([^"]*\)".*/\1/p; s/^Client Version: //p' | head -n1)," \
  "kubernetes-validate $(python3 -m pip show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p')," \
  "$(haproxy -v | sed -n 1p | cut -d' ' -f1-3)"

fail=0
echo "== copies equal their originals"
for pair in "k6-load-test.js deploy/kubernetes/k6/k6-load-test.js" \
  "seccomp-io_uring.json deploy/kubernetes/seccomp/seccomp-io_uring.json"; do
  read -r original copy <<<"$pair"
  if cmp -s "$original" "$copy"; then
    echo "ok: $copy"
  else
    echo "FAIL: $copy differs from $original (cp $original $copy)"
    fail=1
  fi
done

echo "== kubectl kustomize, then the schema"
for dir in deploy/kubernetes deploy/kubernetes/seccomp deploy/kubernetes/k6; do
  rendered="$out/$(echo "$dir" | tr / _).yaml"
  if ! kubectl kustomize "$dir" >"$rendered"; then
    echo "FAIL: kubectl kustomize $dir"
    fail=1
    continue
  fi
  kinds=$(sed -n 's/^kind: //p' "$rendered" | sort | tr '\n' ' ')
  echo "$dir renders: $kinds"
  for v in $KUBE_VERSIONS; do
    if python3 -m kubernetes_validate --strict --quiet -k "$v" "$rendered"; then
      echo "ok: every object of $dir is valid for Kubernetes $v"
    else
      echo "FAIL: $dir against Kubernetes $v (above)"
      fail=1
    fi
  done
done

echo "== haproxy -c"
if PERCORE_S1=127.0.0.1:3001 PERCORE_S2=127.0.0.1:3002 PERCORE_S3=127.0.0.1:3003 \
  haproxy -c -q -f deploy/haproxy/haproxy.cfg; then
  echo "ok: deploy/haproxy/haproxy.cfg"
else
  echo "FAIL: haproxy -c deploy/haproxy/haproxy.cfg"
  fail=1
fi

echo "== docker-compose config (profile scale)"
if docker-compose -f docker-compose.yml --profile scale config -q; then
  echo "ok: docker-compose.yml, services: $(docker-compose -f docker-compose.yml --profile scale config --services | tr '\n' ' ')"
else
  echo "FAIL: docker-compose config"
  fail=1
fi

[ "$fail" = 0 ] && echo "deployment files: valid" || { echo "deployment files: INVALID"; exit 1; }
