#!/usr/bin/env bash
# Interoperability: generates Python messages from proto/grpc_predict_v2.proto
# with protoc, starts cnnserve on kernel-chosen ports, and runs
# kserve_python_client.py (Debian's python3-grpcio) against it. The server
# is always stopped, on failure too.
set -euo pipefail
BIN=$1
SRC=$2
source "$SRC/tests/integration/lib.sh"
protoc --python_out="$WORK" -I "$SRC/proto" "$SRC/proto/grpc_predict_v2.proto"
start_server "$BIN" --model_repository="$SRC/models" --model_control_mode=explicit --load_model=digits_lenet5

/usr/bin/python3 "$SRC/tests/integration/kserve_python_client.py" "$WORK" "127.0.0.1:$GRPC_PORT" "$SRC"
