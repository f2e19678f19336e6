#!/usr/bin/env bash
# Builds the image with the project's Dockerfile, runs it with the compose
# file's settings and checks that it really works in a container:
#   - docker-compose accepts docker-compose.yml;
#   - the container becomes healthy (the HEALTHCHECK needs no curl), serves on
#     io_uring (its process holds io_uring fds) with the shipped seccomp
#     profile, runs as non-root on the compose cpuset, with the compose limits;
#   - the seed scenario passes against it (percore-load seed, or a plain
#     request loop when percore-load is not there yet);
#   - with io_uring denied by seccomp (Docker >= 25's default profile), and
#     with too little locked memory, it fails fast with exit 2 and a message
#     naming the fix;
#   - SIGTERM (docker stop) drains it and it exits 0;
#   - a PGO_PROFILE build argument naming a missing profile, or one written
#     by another rustc, fails the build with a message saying which;
#   - the compose profile `scale`: HAProxy's image builds from Debian's
#     haproxy package, three replicas come up healthy and UP behind it, the
#     seed scenario passes through it with every replica serving, and each
#     replica exits 0 on stop.
#
# Needs root and Debian's docker.io (installed when missing). When dockerd
# cannot start here, the script says so and exits 0 (REQUIRE_DOCKER=1: exit 1).
#
# Docker Hub is not needed: the base images the Dockerfile names are built
# locally when absent and kept between runs. debian:bookworm-slim is a
# debootstrapped rootfs from Debian's mirror; rust:1-bookworm is that image
# plus the build packages (apt, from Debian's mirror), this machine's Rust
# toolchain and the crates of Cargo.lock vendored, so that the Dockerfile's
# own `cargo build` runs unchanged and offline. USE_REGISTRY_IMAGES=1 skips
# all that and pulls the real images instead.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

started=$(date +%s)
step() { echo "== $* (+$(($(date +%s) - started))s)"; }
fail() { echo "FAIL: $*"; exit 1; }

project=percore-ci             # compose project name: never the user's stack
image=percore:latest           # the tag docker-compose.yml runs
work=$(mktemp -d)
dockerd_pid=""

# ---- docker -------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
need_apt=()
[ -x /usr/sbin/dockerd ] || need_apt+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing ${need_apt[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# The engine's own client: another `docker` earlier on PATH may be a
# different tool.
if [ -x /usr/bin/docker ]; then docker_bin=/usr/bin/docker; else docker_bin=$(command -v docker); fi
docker() { "$docker_bin" "$@"; }
compose_files=(-f "$repo/docker-compose.yml")
compose() { docker-compose --compatibility -p "$project" "${compose_files[@]}" "$@"; }

cleanup() {
  set +e
  if [ -n "$docker_bin" ] && docker info >/dev/null 2>&1; then
    compose --profile load --profile scale down --volumes --remove-orphans >/dev/null 2>&1
    docker rm -f "$project-run" "$project-deny" "$project-memlock" >/dev/null 2>&1
  fi
  if [ -n "$dockerd_pid" ]; then
    # Stop the dockerd this script started (its images stay on disk).
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  remove_pgo_probe
  rm -rf "$work"
}
trap cleanup EXIT

# The PGO refusal check's files (below), and pgo/ if nothing else is in it.
pgo_probe=""
remove_pgo_probe() {
  [ -n "$pgo_probe" ] || return 0
  rm -f "$pgo_probe.profdata" "$pgo_probe.profdata.rustc"
  rmdir pgo 2>/dev/null || true
}

skip() {
  echo "== container test SKIPPED: $*"
  [ "${REQUIRE_DOCKER:-0}" = 1 ] && exit 1
  exit 0
}

step "docker engine"
if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || skip "not root, and no running dockerd"
  /usr/sbin/dockerd >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    tail -n 5 "$work/dockerd.log"
    skip "dockerd cannot start on this machine (log above)"
  fi
fi
docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'
docker-compose version --short

# ---- compose file -------------------------------------------------------------
step "docker-compose config"
compose --profile scale config -q
echo "docker-compose.yml accepted (with the profile scale)"

# The compose file asks for unlimited locked memory and 65536 fds. Granting
# more than the engine's own hard limits needs CAP_SYS_RESOURCE; where the
# engine lacks it (some sandboxes and nested containers), runc refuses to
# start the container ("error setting rlimit type 8" / "type 7"). Then use
# those hard limits instead: percore needs 512 KiB of memlock per executor
# and one fd per connection, and says so at start when a limit is too low.
memlock=-1
nofile=65536
if ! (ulimit -H -l unlimited) 2>/dev/null; then
  memlock=$(($(ulimit -H -l) * 1024))
fi
if [ "$(ulimit -H -n)" != unlimited ] && [ "$(ulimit -H -n)" -lt "$nofile" ] &&
  ! (ulimit -H -n "$nofile") 2>/dev/null; then
  nofile=$(ulimit -H -n)
fi
if [ "$memlock" != -1 ] || [ "$nofile" != 65536 ]; then
  echo "NOTE: this machine's hard limits cannot be raised (no CAP_SYS_RESOURCE): containers" \
    "get memlock=$memlock (compose: -1) and nofile=$nofile (compose: 65536)"
  cat >"$work/compose.limits.yml" <<EOF
services:
  app:
    ulimits:
      memlock: {soft: $memlock, hard: $memlock}
      nofile: {soft: $nofile, hard: $nofile}
  loadgen:
    ulimits:
      memlock: {soft: $memlock, hard: $memlock}
      nofile: {soft: $nofile, hard: $nofile}
EOF
  for s in app1 app2 app3; do
    printf '  %s:\n    ulimits:\n      memlock: {soft: %s, hard: %s}\n      nofile: {soft: %s, hard: %s}\n' \
      "$s" "$memlock" "$memlock" "$nofile" "$nofile" >>"$work/compose.limits.yml"
  done
  printf '  haproxy:\n    ulimits:\n      nofile: {soft: %s, hard: %s}\n' "$nofile" "$nofile" >>"$work/compose.limits.yml"
  compose_files+=(-f "$work/compose.limits.yml")
fi

# ---- base images ----------------------------------------------------------------
# A Debian bookworm rootfs from Debian's mirror, imported as an image.
debootstrap_image() { # tag
  local tag=$1 root="$work/rootfs"
  echo "debootstrap bookworm for $tag"
  debootstrap --variant=minbase bookworm "$root" \
    http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log"; fail "debootstrap for $tag"; }
  # Slim as Docker's -slim images are: no apt lists, caches, docs or locales.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*
  find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$tag" >/dev/null
  rm -rf "$root"
}

# The builder's base: the imported Debian, the packages the official rust
# image has that the build needs (gcc and libc6-dev to link, make for
# glommio's bundled liburing, git because glommio's build script runs it),
# and the Rust toolchain this machine builds with, without its docs and
# sources, laid out as in the official image (CARGO_HOME=/usr/local/cargo,
# its bin on PATH).
toolchain_image() { # tag
  local ctx="$work/toolchain" sysroot d
  sysroot=$(rustc --print sysroot)
  mkdir -p "$ctx/rust"
  for d in bin lib libexec etc; do
    [ -d "$sysroot/$d" ] || continue
    # Hard links when on the same filesystem: the toolchain is ~600 MB.
    cp -al "$sysroot/$d" "$ctx/rust/" 2>/dev/null || cp -a "$sysroot/$d" "$ctx/rust/"
  done
  cat >"$ctx/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends gcc libc6-dev make pkg-config git ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY rust /usr/local/rust
RUN mkdir -p /usr/local/cargo/bin \
 && for t in cargo rustc rustdoc; do ln -s ../../rust/bin/$t /usr/local/cargo/bin/$t; done
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
  docker build --force-rm -q -t "$1" "$ctx" >/dev/null
  rm -rf "$ctx"
}

if [ "${USE_REGISTRY_IMAGES:-0}" = 1 ]; then
  step "base images: from the registry (USE_REGISTRY_IMAGES=1)"
  docker pull -q debian:bookworm-slim
  docker pull -q rust:1-bookworm
else
  step "base images (built locally when absent)"
  if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    echo "debian:bookworm-slim: cached"
  else
    debootstrap_image debian:bookworm-slim
  fi
  toolchain_tag="percore-ci/rust-toolchain:$(rustc --version | awk '{print $2}')"
  if docker image inspect "$toolchain_tag" >/dev/null 2>&1; then
    echo "$toolchain_tag: cached"
  else
    echo "$toolchain_tag: from debian:bookworm-slim and $(rustc --print sysroot | sed 's|.*/||')"
    toolchain_image "$toolchain_tag"
  fi
  # rust:1-bookworm = the toolchain plus the crates of Cargo.lock, vendored,
  # with cargo told to use them: the Dockerfile's own `cargo build` then runs
  # unchanged, offline. Rebuilt only when Cargo.lock changes.
  lock_sum=$(sha256sum Cargo.lock | cut -c1-16)
  have_sum=$(docker image inspect -f '{{index .Config.Labels "percore.cargo-lock"}}' rust:1-bookworm 2>/dev/null || true)
  if [ "$have_sum" = "$lock_sum" ]; then
    echo "rust:1-bookworm (vendored crates for Cargo.lock $lock_sum): cached"
  else
    echo "rust:1-bookworm: vendoring the crates of Cargo.lock $lock_sum"
    mkdir -p "$work/builder"
    cargo vendor --locked --versioned-dirs --quiet "$work/builder/vendor" >/dev/null
    cat >"$work/builder/config.toml" <<'EOF'
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "/usr/local/cargo/vendor"

[net]
offline = true
EOF
    cat >"$work/builder/Dockerfile" <<EOF
FROM $toolchain_tag
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY vendor /usr/local/cargo/vendor
COPY config.toml /usr/local/cargo/config.toml
LABEL percore.cargo-lock=$lock_sum
EOF
    docker build -q -t rust:1-bookworm "$work/builder" >/dev/null
    rm -rf "$work/builder"
  fi
fi

# ---- the image ----------------------------------------------------------------------
step "docker build (the project's Dockerfile)"
build_started=$(date +%s)
docker build --force-rm -t "$image" . >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; fail "docker build"; }
grep -E '^Step |Using cache|Finished' "$work/build.log" | sed 's/^/  /' | tail -n 30
size=$(docker image inspect -f '{{.Size}}' "$image")
echo "image $image: $((size / 1024 / 1024)) MiB, built in $(($(date +%s) - build_started)) s"
docker run --rm --entrypoint bash "$image" -c 'ls -l /usr/local/bin/percore*'
have_load_in_image=0
if docker run --rm "$image" sh -c 'command -v percore-load >/dev/null && percore-load seed --help >/dev/null 2>&1'; then
  have_load_in_image=1
fi

# A free host port for the published 3000.
host_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PERCORE_PORT=$host_port
base_url="http://127.0.0.1:$host_port"

wait_healthy() { # container, seconds
  local status=""
  for _ in $(seq 1 $(($2 * 2))); do
    status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null || echo gone)
    [ "$status" = healthy ] && return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ] || break
    sleep 0.5
  done
  echo "container $1 is $status; its log:"
  docker logs "$1" 2>&1 | tail -n 20
  return 1
}

# ---- a profile-guided build that cannot be one ------------------------------------
# The success path (scripts/pgo-build.sh, then PGO_PROFILE) takes two release
# builds more than this test can afford; what is checked here is that the
# Dockerfile refuses a profile it cannot use instead of building without it.
# The probe files go after the image above is built, so its cache stays valid.
step "PGO_PROFILE: a missing profile, and one from another rustc, are refused"
pgo_probe="pgo/container-test-probe-$$"
mkdir -p pgo
pgo_refused() { # expected words
  set +e
  docker build --force-rm --build-arg PGO_PROFILE="$pgo_probe.profdata" -t "$project-pgo-probe" . \
    >"$work/pgo-build.log" 2>&1
  local rc=$?
  set -e
  [ "$rc" != 0 ] || fail "a build with an unusable PGO_PROFILE succeeded"
  local said
  said=$(grep -m 1 -- "$1" "$work/pgo-build.log") ||
    { tail -n 20 "$work/pgo-build.log"; fail "the refusal does not say '$1'"; }
  sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/  | /' <<<"$said"
}
# The messages name the probe's path, expanded: the echoed RUN line, which
# holds the same words around an unexpanded $PGO_PROFILE, cannot match.
pgo_refused "PGO_PROFILE=$pgo_probe.profdata: the profile or its .rustc is not in the build context"
printf 'not a profile\n' >"$pgo_probe.profdata"
printf 'rustc 0.0.0 (another compiler)\n' >"$pgo_probe.profdata.rustc"
pgo_refused "PGO_PROFILE=$pgo_probe.profdata was written by another rustc"
# Now as well as at exit: the probe is not left in the build context for the rest of the run.
remove_pgo_probe

# ---- io_uring denied -------------------------------------------------------------------
# Docker >= 25's default profile is the shipped one without the io_uring
# calls. (Docker 20.10 to 24 still allowed them by default, so the engine's
# built-in default cannot show the failure on every engine.)
fails_fast() { # name, expected words, docker run options...
  local name=$1 want=$2 t0 rc elapsed
  shift 2
  t0=$(date +%s.%N)
  set +e
  timeout 30 "$docker_bin" run --name "$project-$name" "$@" "$image" >"$work/$name.log" 2>&1
  rc=$?
  set -e
  elapsed=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
  docker rm -f "$project-$name" >/dev/null 2>&1 || true
  echo "exit $rc after ${elapsed}s (including container start); stderr:"
  { grep '^percore:' "$work/$name.log" || true; } | fold -s -w 100 | sed 's/^/  | /'
  [ "$rc" = 2 ] || { cat "$work/$name.log"; fail "$name: expected exit 2, got $rc"; }
  python3 -c "import sys; sys.exit(0 if $elapsed < 10 else 1)" || fail "$name: took ${elapsed}s, not fast"
  for w in $want; do
    grep -q -- "$w" "$work/$name.log" || fail "$name: the message does not mention '$w'"
  done
}

step "io_uring denied by seccomp (the shipped profile without the io_uring calls)"
python3 - seccomp-io_uring.json "$work/seccomp-no-io_uring.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
io = {"io_uring_setup", "io_uring_enter", "io_uring_register"}
assert any(io <= set(s["names"]) for s in p["syscalls"]), "the shipped profile lacks io_uring"
for s in p["syscalls"]:
    s["names"] = [n for n in s["names"] if n not in io]
p["syscalls"] = [s for s in p["syscalls"] if s["names"]]
json.dump(p, open(sys.argv[2], "w"))
PY
fails_fast deny "io_uring seccomp" --ulimit "memlock=$memlock:$memlock" --security-opt "seccomp=$work/seccomp-no-io_uring.json"

step "too little locked memory (--ulimit memlock=64 KiB)"
fails_fast memlock "RLIMIT_MEMLOCK memlock" --ulimit memlock=65536:65536 --security-opt seccomp=seccomp-io_uring.json

# ---- docker run, as README shows it ---------------------------------------------------------
step "docker run with the shipped profile and the image's HEALTHCHECK"
docker run -d --name "$project-run" --ulimit "memlock=$memlock:$memlock" \
  --security-opt seccomp=seccomp-io_uring.json -p "127.0.0.1:$host_port:3000" "$image" >/dev/null
wait_healthy "$project-run" 30 || fail "docker run: not healthy"
curl -fsS --max-time 5 "$base_url/api/data/client-1" >/dev/null
echo "healthy, serving"
docker rm -f "$project-run" >/dev/null

# ---- docker-compose up -------------------------------------------------------------------
step "docker-compose --compatibility up -d app"
compose up -d --no-build app 2>&1 | sed 's/^/  /'
cid=$(compose ps -q app)
[ -n "$cid" ] || fail "compose started no app container"
wait_healthy "$cid" 60 || fail "compose app: not healthy"
echo "healthy (compose healthcheck)"

step "checks inside the container"
health=$(curl -fsS --max-time 5 "$base_url/api/health")
echo "GET /api/health: $health"
grep -q '"status":"healthy"' <<<"$health" || fail "unexpected health body"
listening=$(docker logs "$cid" 2>&1 | grep -m1 'listening' || true)
echo "log: ${listening#*INFO }"
grep -q 'shards=2' <<<"$listening" || fail "expected 2 shards (WORKERS=2 on cpuset 0-1)"
# io_uring rings are anonymous inodes: their fds read anon_inode:[io_uring].
rings=$(docker exec "$cid" bash -c 'n=0; for f in /proc/1/fd/*; do [ "$(readlink "$f")" = "anon_inode:[io_uring]" ] && n=$((n + 1)); done; echo $n')
echo "io_uring instances held by percore (PID 1): $rings"
[ "$rings" -ge 3 ] || fail "expected an io_uring per executor (2 shards + control)"
# docker-compose reads the profile file and hands its JSON to the engine;
# the engine's built-in default never shows up here, so this proves the
# container runs under the shipped profile (io_uring call and our comment).
secopt=$(docker inspect -f '{{json .HostConfig.SecurityOpt}}' "$cid")
if ! grep -q 'io_uring_setup' <<<"$secopt" || ! grep -q 'percore: glommio' <<<"$secopt"; then
  fail "the app container does not run under seccomp-io_uring.json: $secopt"
fi
echo "seccomp: runs under the shipped seccomp-io_uring.json"
uid=$(docker exec "$cid" id -u)
echo "runs as uid $uid"
[ "$uid" != 0 ] || fail "runs as root"
docker inspect -f 'limits: cpuset={{.HostConfig.CpusetCpus}} nanocpus={{.HostConfig.NanoCpus}} memory={{.HostConfig.Memory}} reservation={{.HostConfig.MemoryReservation}} ulimits={{.HostConfig.Ulimits}} sysctls={{.HostConfig.Sysctls}}' "$cid"
[ "$(docker inspect -f '{{.HostConfig.Memory}}' "$cid")" = $((1024 * 1024 * 1024)) ] || fail "memory limit is not 1 GiB"
docker exec "$cid" bash -c 'echo "in the container: memlock $(ulimit -l), nofile $(ulimit -n), somaxconn $(cat /proc/sys/net/core/somaxconn)"'

# ---- seed scenario -----------------------------------------------------------------------------
step "seed scenario against the container"
seed_rc=0
if [ "$have_load_in_image" = 1 ]; then
  echo "percore-load seed from the image (compose service loadgen, profile load)"
  set +e
  compose --profile load run --rm loadgen 2>&1 | tee "$work/seed.log" | sed 's/^/  /'
  seed_rc=${PIPESTATUS[0]}
  set -e
elif [ -x target/release/percore-load ] && target/release/percore-load seed --help >/dev/null 2>&1; then
  echo "percore-load seed from target/release (the image has no percore-load)"
  set +e
  target/release/percore-load seed --url "$base_url" 2>&1 | tee "$work/seed.log" | sed 's/^/  /'
  seed_rc=${PIPESTATUS[0]}
  set -e
else
  echo "NOTE: percore-load (with 'seed') is neither in the image nor in target/release:"
  echo "      falling back to wrk, 100 connections for 10 s, as the seed's 100 clients"
  if command -v wrk >/dev/null 2>&1; then
    wrk -t 2 -c 100 -d 10s --latency "$base_url/api/data/client-1" 2>&1 | tee "$work/seed.log" | sed 's/^/  /'
    grep -q 'Non-2xx\|Socket errors' "$work/seed.log" && seed_rc=1
  else
    echo "      (no wrk: 2000 sequential requests with curl)"
    for i in $(seq 1 2000); do
      curl -fsS -o /dev/null --max-time 5 "$base_url/api/data/client-$((i % 100))" || { seed_rc=1; break; }
    done
  fi
fi
[ "$seed_rc" = 0 ] || fail "seed scenario failed (exit $seed_rc)"
curl -fsS --max-time 5 "$base_url/api/metrics" >"$work/metrics.json"
python3 - "$work/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"server: {m['requests']['total']} requests {m['requests']['byStatus']}, "
      f"server-side p99 {m['latency']['p99']} ms, RSS {m['memory']['rss'] / 2**20:.1f} MiB, "
      f"CPU {m['cpu']['userSeconds'] + m['cpu']['systemSeconds']:.1f} s, "
      f"cache hit rate {m['cache']['hitRate']:.3f}")
PY

# ---- SIGTERM -----------------------------------------------------------------------------
step "docker-compose stop app (SIGTERM to PID 1: drain, exit 0)"
t0=$(date +%s.%N)
compose stop app 2>&1 | sed 's/^/  /'
elapsed=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
code=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
echo "exit code $code after ${elapsed}s"
docker logs "$cid" 2>&1 | tail -n 3 | sed 's/^/  | /'
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
python3 -c "import sys; sys.exit(0 if $elapsed < 10 else 1)" || fail "stop took ${elapsed}s: SIGTERM not handled?"

# ---- profile scale ---------------------------------------------------------------------------
# Three replicas behind HAProxy built from Debian's package (deploy/haproxy/):
# every replica healthy and UP in HAProxy, the seed scenario through HAProxy,
# every replica serving a share, and exit 0 from each on `docker-compose stop`.
step "compose profile scale: HAProxy image from Debian's haproxy package"
scale_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stats_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PERCORE_SCALE_PORT=$scale_port HAPROXY_STATS_PORT=$stats_port
compose --profile scale build haproxy >"$work/haproxy-build.log" 2>&1 || { tail -n 30 "$work/haproxy-build.log"; fail "haproxy image"; }
# `sed -n 1p` reads to the end: `head -n1` closed the pipe early, and the
# docker client, writing the rest, failed the step under pipefail.
docker run --rm --entrypoint haproxy percore-haproxy:latest -v | sed -n 1p
step "docker-compose --profile scale up -d (app1 app2 app3 haproxy)"
compose --profile scale up -d --no-build app1 app2 app3 haproxy 2>&1 | sed 's/^/  /'
for s in app1 app2 app3; do
  wait_healthy "$(compose ps -q "$s")" 60 || fail "scale: $s not healthy"
done
ups=""
for _ in $(seq 1 60); do
  ups=$(curl -fsS --max-time 2 "http://127.0.0.1:$stats_port/stats;csv" 2>/dev/null |
    awk -F, '$1 == "percore" && $2 ~ /^s[123]$/ && $18 == "UP" {n++} END {print n + 0}')
  [ "$ups" = 3 ] && break
  sleep 0.5
done
[ "$ups" = 3 ] || { compose logs haproxy | tail -n 20; fail "scale: HAProxy sees $ups of 3 replicas UP"; }
echo "HAProxy sees the 3 replicas UP"
step "seed scenario through HAProxy (percore-load seed, 100 clients)"
set +e
compose --profile load --profile scale run --rm --no-deps loadgen \
  percore-load seed --url http://haproxy:8080 --no-server-metrics 2>&1 | tee "$work/scale-seed.log" | sed 's/^/  /'
scale_rc=${PIPESTATUS[0]}
set -e
[ "$scale_rc" = 0 ] || fail "seed scenario through HAProxy failed (exit $scale_rc)"
# Requests per replica as HAProxy counted them (stot): hashing spreads the
# seed's 100 ids over all three.
shares=$(curl -fsS --max-time 2 "http://127.0.0.1:$stats_port/stats;csv" |
  awk -F, '$1 == "percore" && $2 ~ /^s[123]$/ {printf "%s=%s ", $2, $8}')
echo "requests per replica: $shares"
for s in s1 s2 s3; do
  grep -qE "$s=[1-9]" <<<"$shares" || fail "scale: replica $s served nothing"
done
step "docker-compose --profile scale stop (SIGTERM to each replica: exit 0)"
compose --profile scale stop haproxy app1 app2 app3 2>&1 | sed 's/^/  /'
for s in app1 app2 app3; do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -q "$s")")
  echo "$s: exit code $code"
  [ "$code" = 0 ] || fail "scale: $s exit code $code after SIGTERM"
done

step "container test passed in $(($(date +%s) - started)) s"
