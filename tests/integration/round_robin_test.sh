#!/usr/bin/env bash
# cnnserve-client --lb=round_robin spreads requests over every address of
# its target, as it would over a headless Service's pods: two servers, one
# perf run, and each server's /metrics shows about half of the requests.
set -euo pipefail
BIN=$1
SRC=$2
source "$SRC/tests/integration/lib.sh"
start_server "$BIN" --model_repository="$SRC/models" --model_control_mode=explicit --load_model=digits_lenet5
A_GRPC=$GRPC_PORT A_HTTP=$HTTP_PORT
start_server "$BIN" --model_repository="$SRC/models" --model_control_mode=explicit --load_model=digits_lenet5
B_GRPC=$GRPC_PORT B_HTTP=$HTTP_PORT

"$BIN/cnnserve-client" perf --server="ipv4:127.0.0.1:$A_GRPC,127.0.0.1:$B_GRPC" --lb=round_robin \
  --model=digits_lenet5 --concurrency=4 --duration_s=0.5 --warmup_s=0.2 --max_windows=1

ok_count() {
  exec 3<>/dev/tcp/127.0.0.1/$1
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  awk '/^cnnserve_requests_total\{code="OK",model="digits_lenet5"/ {print int($2)}' <&3
  exec 3<&-
}
a=$(ok_count "$A_HTTP")
b=$(ok_count "$B_HTTP")
echo "server A answered $a, server B answered $b"
(( a > 0 && b > 0 && a * 3 > b && b * 3 > a )) || { echo "FAIL: requests were not spread"; exit 1; }
echo "PASS: round_robin spreads requests over both servers"
