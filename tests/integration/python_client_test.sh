#!/usr/bin/env bash
# Interoperability: generates Python messages from proto/grpc_predict_v2.proto
# with protoc, starts cnnserve on kernel-chosen ports, and runs
# kserve_python_client.py (Debian's python3-grpcio) against it. The server
# is always stopped, on failure too.
set -euo pipefail
BIN=$1
SRC=$2
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

protoc --python_out="$WORK" -I "$SRC/proto" "$SRC/proto/grpc_predict_v2.proto"

"$BIN/cnnserve" --model_repository="$SRC/models" --model_control_mode=explicit \
  --load_model=digits_lenet5 --host=127.0.0.1 --grpc_port=0 --http_port=0 \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  grep -q "cnnserve listening" "$WORK/server.log" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; echo "FAIL: server exited"; exit 1; }
  sleep 0.1
done
line=$(grep "cnnserve listening" "$WORK/server.log") || { cat "$WORK/server.log"; echo "FAIL: server did not start"; exit 1; }
GRPC_PORT=$(sed -E 's/.*grpc=[^ ]*:([0-9]+).*/\1/' <<<"$line")

/usr/bin/python3 "$SRC/tests/integration/kserve_python_client.py" "$WORK" "127.0.0.1:$GRPC_PORT" "$SRC"
