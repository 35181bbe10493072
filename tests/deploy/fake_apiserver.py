#!/usr/bin/python3
"""A stand-in for a Kubernetes API server's discovery endpoints, so that
`kubectl apply --dry-run=client` can map kinds to resources with no
cluster: it lists the API groups and resources cnnserve's manifests use
and answers 404 to every object lookup (so each object is "created").
Prints its port on stdout, then serves until killed.

usage: fake_apiserver.py
"""
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESOURCES = {
    # group/version: [(kind, plural, namespaced)]
    "v1": [("Service", "services", True), ("ConfigMap", "configmaps", True),
           ("Namespace", "namespaces", False), ("Pod", "pods", True)],
    "apps/v1": [("Deployment", "deployments", True)],
    "autoscaling/v2": [("HorizontalPodAutoscaler", "horizontalpodautoscalers", True)],
    "policy/v1": [("PodDisruptionBudget", "poddisruptionbudgets", True)],
    "monitoring.coreos.com/v1": [("ServiceMonitor", "servicemonitors", True),
                                 ("PodMonitor", "podmonitors", True)],
}


def resource_list(gv):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": [{"name": plural, "singularName": kind.lower(), "namespaced": ns,
                           "kind": kind, "verbs": ["create", "delete", "get", "list", "patch",
                                                   "update", "watch"]}
                          for kind, plural, ns in RESOURCES[gv]]}


def group_list():
    groups = []
    for gv in RESOURCES:
        if "/" not in gv:
            continue
        group, version = gv.split("/")
        v = {"groupVersion": gv, "version": version}
        groups.append({"name": group, "versions": [v], "preferredVersion": v})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            return self.reply(200, group_list())
        if path == "/api/v1":
            return self.reply(200, resource_list("v1"))
        if path.startswith("/apis/") and path.count("/") == 3 and path[6:] in RESOURCES:
            return self.reply(200, resource_list(path[6:]))
        self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": "NotFound", "code": 404, "message": "not found"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
