#!/usr/bin/env bash
# cnnserve-client perf against a live server: closed and open loop steps
# with --metrics_url, JSON, CSV and SVG output. Checks that the files parse
# (Python's json, csv and xml modules) and that every step's answered
# requests equal the server's cnnserve_requests_total delta exactly.
set -euo pipefail
BIN=$1
SRC=$2
source "$SRC/tests/integration/lib.sh"
start_server "$BIN" --model_repository="$SRC/models" --model_control_mode=explicit --load_model=digits_lenet5
COMMON=(--server=127.0.0.1:$GRPC_PORT --model=digits_lenet5 --duration_s=0.7 --warmup_s=0.2
        --max_windows=2 --metrics_url=http://127.0.0.1:$HTTP_PORT/metrics)

"$BIN/cnnserve-client" perf "${COMMON[@]}" --concurrency=1,4 --images="$SRC/samples" --slo_p99_ms=1000 \
  --json_file="$WORK/closed.json" --csv_file="$WORK/closed.csv" --plot="$WORK/closed.svg"
"$BIN/cnnserve-client" perf "${COMMON[@]}" --rate=300 --arrivals=poisson --json_file="$WORK/open.json"

/usr/bin/python3 - "$WORK" <<'PY'
import csv, json, sys, xml.etree.ElementTree as ET
work = sys.argv[1]
failures = []
for name in ("closed", "open"):
    doc = json.load(open(f"{work}/{name}.json"))
    for step in doc["steps"]:
        server = step["server"]["requests"]
        print(f"{name} {step['label']}: answered {step['answered']} server delta {server} "
              f"{step['requests_per_s']:.0f} req/s p99 {step['p99_ms']:.2f} ms errors {step['errors']}")
        if step["answered"] != server or step["sent"] != step["answered"]:
            failures.append(f"{name} {step['label']}: counts differ")
        if step["requests"] <= 0 or step["errors"]:
            failures.append(f"{name} {step['label']}: no answers or errors")
rows = list(csv.DictReader(open(f"{work}/closed.csv")))
if [r["label"] for r in rows] != ["c=1", "c=4"]:
    failures.append("csv rows")
svg = ET.parse(f"{work}/closed.svg").getroot()
if not svg.tag.endswith("svg") or len(svg.findall("{http://www.w3.org/2000/svg}polyline")) != 3:
    failures.append("svg")
if failures:
    print("FAIL:", "; ".join(failures))
    sys.exit(1)
print("PASS: perf counts match the server's, and its JSON, CSV and SVG parse")
PY
