#!/usr/bin/env bash
# Starts build/bin/cnnserve on kernel-chosen ports, classifies samples/*.png
# with cnnserve-client as the README does, and checks each top label is the
# digit in the file name. The server is always stopped, on failure too.
set -euo pipefail
BIN=$1
SRC=$2
source "$SRC/tests/integration/lib.sh"
start_server "$BIN" --model_repository="$SRC/models"

"$BIN/cnnserve-client" health --server=127.0.0.1:$GRPC_PORT

# HTTP readiness answers 200 (bash's /dev/tcp, no curl needed).
exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT
printf 'GET /v2/health/ready HTTP/1.0\r\n\r\n' >&3
status=$(head -1 <&3)
exec 3<&-
[[ "$status" == *" 200 "* ]] || { echo "FAIL: /v2/health/ready answered '$status'"; exit 1; }

"$BIN/cnnserve-client" classify --server=127.0.0.1:$GRPC_PORT --model=digits_lenet5 --top_k=1 \
  --json "$SRC"/samples/*.png >"$WORK/out.json"
cat "$WORK/out.json"

passed=0
failed=0
for f in "$SRC"/samples/digit_*.png; do
  want=$(basename "$f" .png | sed 's/digit_//')
  got=$(grep -F "\"image\":\"$f\"" "$WORK/out.json" | sed -E 's/.*"label":"([^"]*)".*/\1/')
  if [[ "$got" == "$want" ]]; then passed=$((passed + 1)); else
    echo "FAIL: $f classified as '$got', expected '$want'"; failed=$((failed + 1)); fi
done

# The default repository: every model READY.
"$BIN/cnnserve-client" models --server=127.0.0.1:$GRPC_PORT | tee "$WORK/models.txt"
for m in digits_lenet5 resnet18 resnet50 vgg16; do
  grep -Eq "^$m +1 +READY" "$WORK/models.txt" || { echo "FAIL: $m is not READY"; failed=$((failed + 1)); }
done

# A short perf run: every request answered, none in error.
"$BIN/cnnserve-client" perf --server=127.0.0.1:$GRPC_PORT --model=digits_lenet5 --concurrency=1,4 \
  --duration_s=1 --warmup_s=0.2 --images="$SRC/samples" | tee "$WORK/perf.txt"
[[ $(awk 'NR > 1 && $NF == "0" && $2 > 0' "$WORK/perf.txt" | wc -l) -eq 2 ]] || {
  echo "FAIL: perf saw errors or no throughput"; failed=$((failed + 1)); }

# Metadata names the input the README's example feeds.
"$BIN/cnnserve-client" metadata --server=127.0.0.1:$GRPC_PORT digits_lenet5 | tee "$WORK/meta.txt"
grep -q "input     input FP32 \[-1,1,32,32\]" "$WORK/meta.txt" || { echo "FAIL: metadata"; failed=$((failed + 1)); }
"$BIN/cnnserve-client" health --server=127.0.0.1:$GRPC_PORT | grep -q "grpc health: SERVING" || {
  echo "FAIL: gRPC health is not SERVING"; failed=$((failed + 1)); }

# A bad request gets a clear error and a non-zero exit; the server stays up.
if "$BIN/cnnserve-client" classify --server=127.0.0.1:$GRPC_PORT --model=nope "$SRC/samples" 2>"$WORK/err"; then
  echo "FAIL: unknown model accepted"; failed=$((failed + 1)); fi
grep -q "NOT_FOUND" "$WORK/err" || { echo "FAIL: no NOT_FOUND in: $(cat "$WORK/err")"; failed=$((failed + 1)); }
"$BIN/cnnserve-client" health --server=127.0.0.1:$GRPC_PORT >/dev/null

# SIGTERM stops the server cleanly.
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"; rc=$?
SERVER_PID=
grep -q "server stopped" "$WORK/server.log" || { echo "FAIL: no clean stop"; failed=$((failed + 1)); }
echo "classify_samples: $passed passed, $failed failed"
[[ $failed -eq 0 && $passed -eq 10 && $rc -eq 0 ]]
