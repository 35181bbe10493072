#!/usr/bin/python3
"""Merges the JSON rows of bench/compare_engines into one table (Markdown).

Per model, batch and thread count: images/s of each engine, cnnserve's
batch latency, the ratio of cnnserve to the best peer, and peak RSS.
"throughput mode" is cnnserve with 2 streams of 1 thread on one model.
"""
import glob
import json
import os
import sys


def main(results_dir):
    rows = []
    for path in glob.glob(os.path.join(results_dir, "*.json")):
        with open(path) as f:
            data = json.load(f)
        for r in data:
            r.setdefault("engine", "cnnserve")
            if r["engine"] == "cnnserve" and r.get("streams", 1) > 1:
                r["engine"] = "cnnserve 2x1"
            r["model"] = os.path.basename(r["model"]).replace(".onnx", "").replace("zoo:", "")
            rows.append(r)
    peers = ["onnxruntime", "pytorch", "torchscript"]
    print("| model | batch | threads | cnnserve img/s | cnnserve ms/batch | cnnserve 2x1 img/s | "
          "ONNX Runtime img/s | ORT ms/batch | PyTorch img/s | TorchScript img/s | "
          "cnnserve / best peer | cnnserve RSS MB | ORT RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["model"], r["batch"], r["threads"]) for r in rows if r["engine"] == "cnnserve"})
    for model, batch, threads in keys:
        def get(engine, t=threads):
            for r in rows:
                if (r["engine"], r["model"], r["batch"], r["threads"]) == (engine, model, batch, t):
                    return r
            return None
        ours = get("cnnserve")
        streams = get("cnnserve 2x1", 1) if threads == 2 else None
        best = max([get(p)["images_per_sec"] for p in peers if get(p)] or [0])
        fmt = lambda r, k="images_per_sec": "%.1f" % r[k] if r else "-"
        ort = get("onnxruntime")
        print("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            model, batch, threads, fmt(ours), fmt(ours, "ms_per_batch"), fmt(streams), fmt(ort),
            fmt(ort, "ms_per_batch"), fmt(get("pytorch")), fmt(get("torchscript")),
            "%.2fx" % (ours["images_per_sec"] / best) if best else "-",
            "%.0f" % (ours["rss_bytes"] / 1e6), "%.0f" % (ort["rss_bytes"] / 1e6) if ort else "-"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
