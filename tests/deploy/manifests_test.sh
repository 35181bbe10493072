#!/usr/bin/env bash
# deploy/ without a cluster or a Docker engine:
#  - `kubectl kustomize` renders each overlay, and `kubectl apply
#    --dry-run=client --validate=false` accepts it (discovery answered by
#    fake_apiserver.py: a client-side dry run still maps kinds through the
#    API server's discovery, so it cannot run with no server at all);
#  - yamllint passes on deploy/ and on the rendered overlays;
#  - promtool checks the Prometheus config and alert rules;
#  - the wiring: probe and service ports match the server's flags, the grace
#    period outlasts the drain, and every metric the alerts, the dashboard,
#    the adapter rule and the HPA example name exists in a live /metrics.
set -euo pipefail
BIN=$1
SRC=$2
source "$SRC/tests/integration/lib.sh"
API_PID=
stop_api() { [[ -n "$API_PID" ]] && kill "$API_PID" 2>/dev/null || true; cleanup; }
trap stop_api EXIT
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# A kubeconfig pointing at the discovery stand-in.
/usr/bin/python3 "$SRC/tests/deploy/fake_apiserver.py" >"$WORK/api.port" &
API_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/api.port" ]] && break; sleep 0.05; done
cat >"$WORK/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$(cat "$WORK/api.port")"}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
users: [{name: fake, user: {}}]
KC
export KUBECONFIG=$WORK/kubeconfig

for overlay in dev prod; do
  kubectl kustomize "$SRC/deploy/k8s/overlays/$overlay" >"$WORK/$overlay.yaml" 2>"$WORK/$overlay.err" ||
    { cat "$WORK/$overlay.err"; fail "kustomize $overlay"; continue; }
  kubectl apply --dry-run=client --validate=false -f "$WORK/$overlay.yaml" | tee "$WORK/$overlay.applied"
  [[ $(grep -c "created (dry run)" "$WORK/$overlay.applied") -eq $(grep -c "^kind:" "$WORK/$overlay.yaml") ]] ||
    fail "dry run of $overlay"
  yamllint -c "$SRC/deploy/.yamllint" "$WORK/$overlay.yaml" || fail "yamllint $overlay"
done
kubectl apply --dry-run=client --validate=false -n cnnserve -f "$SRC/deploy/k8s/examples/" || fail "examples"
yamllint -c "$SRC/deploy/.yamllint" "$SRC/deploy" || fail "yamllint deploy/"
promtool check config "$SRC/deploy/monitoring/prometheus.yml" || fail "promtool config"
promtool check rules "$SRC/deploy/monitoring/alerts.yml" || fail "promtool rules"

# A live server's /metrics after one request, so every series exists.
start_server "$BIN" --model_repository="$SRC/models" --model_control_mode=explicit --load_model=digits_lenet5
"$BIN/cnnserve-client" classify --server=127.0.0.1:$GRPC_PORT --model=digits_lenet5 "$SRC/samples/digit_1.png" >/dev/null
exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT
printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
cat <&3 >"$WORK/metrics.txt"
exec 3<&-

/usr/bin/python3 - "$SRC" "$WORK" <<'PY' || failed=$((failed + 1))
import json, re, sys, yaml
src, work = sys.argv[1], sys.argv[2]
bad = []
# Ports and timing, per overlay.
for overlay in ("dev", "prod"):
    docs = [d for d in yaml.safe_load_all(open(f"{work}/{overlay}.yaml")) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    flags = dict(a[2:].split("=", 1) for a in c["args"] if a.startswith("--") and "=" in a)
    grpc, http = int(flags.get("grpc_port", 8001)), int(flags.get("http_port", 8000))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    if ports.get("grpc") != grpc or ports.get("http") != http:
        bad.append(f"{overlay}: container ports {ports} vs flags grpc={grpc} http={http}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if c[probe].get("grpc", {}).get("port") != grpc:
            bad.append(f"{overlay}: {probe} is not a gRPC probe on {grpc}")
    if int(pod["metadata"]["annotations"]["prometheus.io/port"]) != http:
        bad.append(f"{overlay}: prometheus.io/port is not {http}")
    drain = int(flags.get("exit_timeout_secs", 30)) + int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    if pod["spec"]["terminationGracePeriodSeconds"] <= drain:
        bad.append(f"{overlay}: terminationGracePeriodSeconds does not outlast preStop + exit_timeout ({drain} s)")
    omp = [e for e in c.get("env", []) if e["name"] == "OMP_NUM_THREADS"]
    if not omp or omp[0]["valueFrom"]["resourceFieldRef"]["resource"] != "limits.cpu":
        bad.append(f"{overlay}: OMP_NUM_THREADS does not follow limits.cpu (the engine would use every node core)")
    if c["resources"]["requests"]["cpu"] != c["resources"]["limits"]["cpu"]:
        bad.append(f"{overlay}: CPU requests and limits differ (the engine sizes its threads to the CPUs)")
    for svc in (d for d in docs if d["kind"] == "Service"):
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in ports:
                bad.append(f"{overlay}: service {svc['metadata']['name']} targets unknown port {p['targetPort']}")
    grpc_svc = next(d for d in docs if d["metadata"]["name"] == "cnnserve-grpc")
    if grpc_svc["spec"].get("clusterIP") != "None":
        bad.append(f"{overlay}: the gRPC service is not headless")
# Every metric named anywhere in deploy/ exists in the server's /metrics.
metrics = open(f"{work}/metrics.txt").read()
exposed = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )", metrics, re.M))
files = ["deploy/monitoring/alerts.yml", "deploy/monitoring/grafana/dashboards/cnnserve.json",
         "deploy/monitoring/prometheus-adapter-rules.yaml", "deploy/k8s/examples/hpa-queue-depth.yaml"]
named = set()
for f in files:
    text = open(f"{src}/{f}").read()
    if f.endswith(".json"):
        json.loads(text)
    named |= set(re.findall(r"\b((?:cnnserve|process)_[a-z_]+)\b", text))
missing = sorted(n for n in named if n not in exposed)
if missing:
    bad.append(f"metrics named in deploy/ but not exposed: {missing}")
print(f"wiring: {len(named)} metric names checked against /metrics")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY

[[ $failed -eq 0 ]] || { echo "manifests: $failed failures"; exit 1; }
echo "PASS: manifests render, dry-run, lint, and are wired to the server"
