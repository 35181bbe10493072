#!/usr/bin/env bash
# /metrics against Prometheus itself: promtool lints the exposition, then a
# real Prometheus server (Debian's package, on loopback, with a temporary
# config and data directory) scrapes cnnserve and a query through its HTTP
# API returns our series. Everything started here is stopped on exit.
set -euo pipefail
BIN=$1
SRC=$2
command -v prometheus >/dev/null && command -v promtool >/dev/null || {
  echo "FAIL: prometheus/promtool missing: run scripts/install-deps"; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# GET over bash's /dev/tcp; prints the body.
http_get() {  # PORT PATH
  exec 3<>/dev/tcp/127.0.0.1/$1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}

"$BIN/cnnserve" --model_repository="$SRC/models" --model_control_mode=explicit \
  --load_model=digits_lenet5 --host=127.0.0.1 --grpc_port=0 --http_port=0 \
  >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do grep -q "cnnserve listening" "$WORK/server.log" && break; sleep 0.1; done
line=$(grep "cnnserve listening" "$WORK/server.log") || { cat "$WORK/server.log"; exit 1; }
GRPC_PORT=$(sed -E 's/.*grpc=[^ ]*:([0-9]+).*/\1/' <<<"$line")
HTTP_PORT=$(sed -E 's/.*http=[^ ]*:([0-9]+).*/\1/' <<<"$line")
"$BIN/cnnserve-client" classify --server=127.0.0.1:$GRPC_PORT --model=digits_lenet5 \
  "$SRC/samples/digit_3.png" >/dev/null

http_get "$HTTP_PORT" /metrics >"$WORK/metrics.txt"
promtool check metrics <"$WORK/metrics.txt"
echo "promtool: the exposition passes"

# A free loopback port for Prometheus.
PROM_PORT=
for port in $(seq 19090 19190); do
  if ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then PROM_PORT=$port; break; fi
done
[[ -n "$PROM_PORT" ]] || { echo "FAIL: no free port for Prometheus"; exit 1; }
cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: cnnserve
    static_configs:
      - targets: ["127.0.0.1:$HTTP_PORT"]
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
  --web.listen-address=127.0.0.1:$PROM_PORT >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 1 120); do
  result=$(http_get "$PROM_PORT" "/api/v1/query?query=cnnserve_requests_total" 2>/dev/null || true)
  if grep -q '"code":"OK"' <<<"$result" && grep -q digits_lenet5 <<<"$result"; then
    echo "prometheus: $result"
    echo "prometheus_scrape: 1 passed, 0 failed"
    exit 0
  fi
  sleep 0.5
done
echo "FAIL: Prometheus never returned cnnserve_requests_total; last answer: ${result:-none}"
tail -20 "$WORK/prometheus.log"
exit 1
