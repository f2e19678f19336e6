# percore: a thread-per-core HTTP/1.1 JSON server on glommio (io_uring).
#
#   docker build -t percore .
#   docker run --rm -p 3000:3000 --ulimit memlock=-1:-1 \
#     --security-opt seccomp=seccomp-io_uring.json percore
#
# io_uring in a container needs two things the defaults do not give:
# - a seccomp profile that allows io_uring_setup/enter/register (Docker >= 25
#   blocks them): seccomp-io_uring.json is Docker's default profile plus those;
# - locked memory for the rings: `--ulimit memlock=-1:-1`.
# Without them percore exits 2 at start with a message naming the fix.
# docker-compose.yml sets both, and more.
#
# Written for both the classic builder and BuildKit (no BuildKit-only syntax).

# ---- builder: the release binaries ------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /build

# Dependencies in their own layer: build them against stub targets from the
# manifest and lock file alone, so that editing src/ rebuilds only percore.
# The stubs cover src/main.rs, src/lib.rs and every [[bin]]/[[bench]]/[[test]]/
# [[example]] the manifest declares (cargo refuses a manifest whose targets
# have no file).
COPY Cargo.toml Cargo.lock ./
# glommio, patched (see third_party/glommio/PATCHED.md): a dependency, so it
# belongs to this layer.
COPY third_party ./third_party
RUN set -eu; \
    mkdir -p src; \
    echo 'fn main() {}' > src/main.rs; \
    : > src/lib.rs; \
    awk ' \
      /^\[\[(bin|bench|test|example)\]\]/ { flush(); kind = $0; gsub(/[][]/, "", kind); next } \
      /^\[/ { flush(); kind = ""; next } \
      kind != "" && /^[[:space:]]*name[[:space:]]*=/ { v = $0; sub(/^[^=]*=[[:space:]]*"/, "", v); sub(/".*/, "", v); name = v } \
      kind != "" && /^[[:space:]]*path[[:space:]]*=/ { v = $0; sub(/^[^=]*=[[:space:]]*"/, "", v); sub(/".*/, "", v); path = v } \
      function flush() { \
        if (kind == "") return; \
        if (path == "") path = (kind == "bin" ? "src/bin" : kind == "bench" ? "benches" : kind == "test" ? "tests" : "examples") "/" name ".rs"; \
        print path; name = ""; path = "" } \
      END { flush() }' Cargo.toml | while read -r stub; do \
        mkdir -p "$(dirname "$stub")"; echo 'fn main() {}' > "$stub"; \
    done; \
    cargo build --release --locked --bins; \
    rm -rf src benches tests examples target/release/.fingerprint/percore-*

# The sources. `--bins` builds every binary the crate has (percore, and
# percore-load once it exists). Touching the sources makes cargo rebuild them
# even when their timestamps predate the stub build above.
#
# PGO_PROFILE (opt-in, empty by default): a profile-guided build. Run
# scripts/pgo-build.sh on a host with io_uring (the training load needs a
# running percore, which a build step's default seccomp profile does not
# allow), then
#   docker build --build-arg PGO_PROFILE=pgo/percore.profdata -t percore .
# LLVM reads only its own version's profile format, so the profile must come
# from the rustc this image builds with: checked against the `rustc -vV`
# saved beside it, and refused otherwise. The dependencies are compiled again
# with the profile too (RUSTFLAGS changes them all): glommio's executor runs
# on every request.
ARG PGO_PROFILE=""
COPY . .
RUN set -eu; \
    find src -name '*.rs' -exec touch {} +; \
    if [ -n "$PGO_PROFILE" ]; then \
      [ -f "$PGO_PROFILE" ] && [ -f "$PGO_PROFILE.rustc" ] || { \
        echo "PGO_PROFILE=$PGO_PROFILE: the profile or its .rustc is not in the build context (scripts/pgo-build.sh)" >&2; exit 1; }; \
      rustc -vV | cmp -s - "$PGO_PROFILE.rustc" || { \
        echo "PGO_PROFILE=$PGO_PROFILE was written by another rustc than this image's:" >&2; \
        cat "$PGO_PROFILE.rustc" >&2; rustc -vV >&2; exit 1; }; \
      export RUSTFLAGS="-Cprofile-use=/build/$PGO_PROFILE -Cllvm-args=-pgo-warn-missing-function=false"; \
      echo "profile-guided build with $PGO_PROFILE"; \
    fi; \
    cargo build --release --locked --bins; \
    mkdir -p /out; \
    find target/release -maxdepth 1 -type f -perm -u+x -name 'percore*' -exec cp {} /out/ \; ; \
    ls -l /out

# ---- runtime ------------------------------------------------------------------
# Debian slim (distroless cc would do as well: the binary needs only glibc and
# libgcc_s, for unwinding a panicking shard, which is restarted).
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin percore
COPY --from=builder /out/ /usr/local/bin/

# Not root: percore needs no privilege. It raises its soft nofile and memlock
# limits to the hard ones itself; the hard ones come from `--ulimit`.
USER 10001:10001
ENV HOST=0.0.0.0 \
    PORT=3000
EXPOSE 3000

# percore drains on SIGTERM (stops accepting, finishes in-flight requests,
# exits 0 within DRAIN_TIMEOUT_MS, 25 s by default; compose's stop_grace_period
# is 30 s). No tini: as PID 1 a process gets no default signal dispositions,
# but percore installs its own SIGTERM/SIGINT handlers, and it starts no child
# processes, so there are no zombies to reap.
STOPSIGNAL SIGTERM

# Healthy when /api/health answers 200 (it answers 503 while draining).
# `percore healthcheck` speaks the request itself (HOST/PORT from the
# environment), so the image needs neither curl nor a shell.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["percore", "healthcheck"]

CMD ["percore"]
