# Sourced by the CI scripts that test the release server.
#
# start_percore LOG: starts ${PERCORE_BIN:-./target/release/percore} on port 0 (the server
# picks a free port and logs it, so parallel runs and a busy port 3000 cannot
# collide with a test), waits up to 10 s for its 'listening' line, and sets
# server_pid and port. The environment passes through to the server. On
# failure it prints the server's log and exits 1.
start_percore() {
  local log=$1
  LOG_FORMAT=text RUST_LOG=info "${PERCORE_BIN:-./target/release/percore}" --port 0 >"$log" 2>&1 &
  server_pid=$!
  port=""
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening.*addr=[^ ]*:\([0-9][0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && return 0
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "FAIL: the server exited at start:"
      cat "$log"
      exit 1
    fi
    sleep 0.1
  done
  echo "FAIL: no 'listening' line from the server within 10 s:"
  cat "$log"
  exit 1
}
