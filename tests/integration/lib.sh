# Shared by the integration tests (sourced): a scratch directory and a
# cnnserve on kernel-chosen ports that is always stopped, on failure too.
#   source lib.sh; start_server BIN_DIR [cnnserve flags...]
# sets WORK, SERVER_PID, GRPC_PORT and HTTP_PORT (of the latest server; it
# may be called again for more servers, each logging to its own file).
WORK=$(mktemp -d)
SERVER_PID=
SERVER_PIDS=()
cleanup() {
  for pid in "${SERVER_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

start_server() {
  local bin=$1
  shift
  local log=$WORK/server.log
  [[ ${#SERVER_PIDS[@]} -gt 0 ]] && log=$WORK/server${#SERVER_PIDS[@]}.log
  "$bin/cnnserve" --host=127.0.0.1 --grpc_port=0 --http_port=0 "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  # The server logs its ports once it listens and its models are loaded.
  for _ in $(seq 1 600); do
    grep -q "cnnserve listening" "$log" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log"; echo "FAIL: server exited"; exit 1; }
    sleep 0.1
  done
  local line
  line=$(grep "cnnserve listening" "$log") || {
    cat "$log"; echo "FAIL: server did not start"; exit 1; }
  GRPC_PORT=$(sed -E 's/.*grpc=[^ ]*:([0-9]+).*/\1/' <<<"$line")
  HTTP_PORT=$(sed -E 's/.*http=[^ ]*:([0-9]+).*/\1/' <<<"$line")
}
