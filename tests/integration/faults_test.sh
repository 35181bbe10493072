#!/usr/bin/env bash
# Faults: SIGTERM under load (accepted requests finish, later ones get
# UNAVAILABLE, never CANCELLED, exit 0 within --exit_timeout_secs) and SIGKILL then restart
# (ready again within 3x the first start-up time plus slack, serving correctly).
set -euo pipefail
BIN=$1
SRC=$2
source "$SRC/tests/integration/lib.sh"
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
FLAGS=(--model_repository="$SRC/models" --model_control_mode=explicit --load_model=digits_lenet5,resnet18
       --exit_timeout_secs=20)

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
t0=$(date +%s%N)
start_server "$BIN" "${FLAGS[@]}"
first_start=$(ms_since "$t0")
echo "first start-up: ${first_start} ms"

# SIGTERM while perf keeps 16 requests in flight on resnet18 (tens of ms each).
"$BIN/cnnserve-client" perf --server=127.0.0.1:$GRPC_PORT --model=resnet18 --concurrency=16 \
  --duration_s=4 --warmup_s=0 --max_windows=1 --json_file="$WORK/perf.json" >"$WORK/perf.txt" 2>&1 &
PERF=$!
sleep 1.5
t_term=$(date +%s%N)
kill -TERM "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
drain=$(ms_since "$t_term")
echo "exit code $rc after ${drain} ms"
[[ $rc -eq 0 ]] || fail "the server exited $rc on SIGTERM"
(( drain < 20000 )) || fail "draining took ${drain} ms, over --exit_timeout_secs"
grep -q 'msg=draining' "$WORK/server.log" && grep -q 'msg="server stopped"' "$WORK/server.log" ||
  fail "no draining / stopped log lines"
wait "$PERF" || true
cat "$WORK/perf.txt"
/usr/bin/python3 - "$WORK/perf.json" <<'PY' || failed=$((failed + 1))
import json, sys
step = json.load(open(sys.argv[1]))["steps"][0]
errors = step["errors"]
print("answered OK in the window:", step["requests"], "errors:", errors, "sent", step["sent"], "answered", step["answered"])
bad = {k: v for k, v in errors.items() if k not in ("UNAVAILABLE",)}
ok = step["requests"] > 0 and step["sent"] == step["answered"] and not bad
if not ok:
    print("FAIL: under SIGTERM every request must be answered, OK or UNAVAILABLE")
sys.exit(0 if ok else 1)
PY

# SIGKILL, then restart: ready within 3x the first start-up (+3 s for a busy machine), and correct.
start_server "$BIN" "${FLAGS[@]}"
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
t0=$(date +%s%N)
start_server "$BIN" "${FLAGS[@]}"
restart=$(ms_since "$t0")
echo "restart after SIGKILL: ${restart} ms (first start-up ${first_start} ms)"
(( restart < 3 * first_start + 3000 )) || fail "restart took ${restart} ms"
"$BIN/cnnserve-client" classify --server=127.0.0.1:$GRPC_PORT --model=digits_lenet5 --top_k=1 \
  "$SRC/samples/digit_6.png" | grep -q "1\. 6 " || fail "after restart, 6 is not classified as 6"

[[ $failed -eq 0 ]] || { echo "faults: $failed failures"; exit 1; }
echo "PASS: SIGTERM drains and exits 0; SIGKILL restarts serve again"
