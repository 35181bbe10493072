#!/usr/bin/python3
"""Merges the JSON rows of bench/compare_engines into one table (Markdown).

Per model, batch and thread count: images/s of each engine, cnnserve's
batch latency, the ratio of cnnserve to the best peer, and peak RSS.
"throughput mode" is cnnserve with 2 streams of 1 thread on one model.
With several repeats (files named MODEL.ENGINE.REP.json), every figure is
the median over the repeats, and a last column says in how many repeats
cnnserve was at or above the best peer.
"""
import glob
import json
import os
import statistics
import sys


def main(results_dir):
    runs = {}  # (engine, model, batch, threads) -> rows, one per repeat
    for path in glob.glob(os.path.join(results_dir, "*.json")):
        parts = os.path.basename(path).split(".")
        rep = parts[-2] if len(parts) >= 4 else "1"
        with open(path) as f:
            data = json.load(f)
        for r in data:
            r.setdefault("engine", "cnnserve")
            if r["engine"] == "cnnserve" and r.get("streams", 1) > 1:
                r["engine"] = "cnnserve 2x1"
            r["model"] = os.path.basename(r["model"]).replace(".onnx", "").replace("zoo:", "")
            r["rep"] = rep
            runs.setdefault((r["engine"], r["model"], r["batch"], r["threads"]), []).append(r)
    rows = []
    for rs in runs.values():
        median = dict(rs[0])
        for k in ("images_per_sec", "ms_per_batch", "rss_bytes"):
            median[k] = statistics.median(r[k] for r in rs)
        median["by_rep"] = {r["rep"]: r["images_per_sec"] for r in rs}
        rows.append(median)
    reps = sorted({r["rep"] for rs in runs.values() for r in rs})
    peers = ["onnxruntime", "pytorch", "torchscript"]
    print("| model | batch | threads | cnnserve img/s | cnnserve ms/batch | cnnserve 2x1 img/s | "
          "ONNX Runtime img/s | ORT ms/batch | PyTorch img/s | TorchScript img/s | "
          "cnnserve / best peer | cnnserve RSS MB | ORT RSS MB | repeats at or above best peer |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
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
        wins = sum(1 for rep in reps if rep in ours["by_rep"] and ours["by_rep"][rep] >= max(
            [get(p)["by_rep"].get(rep, 0) for p in peers if get(p)] or [0]))
        print("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d of %d |" % (
            model, batch, threads, fmt(ours), fmt(ours, "ms_per_batch"), fmt(streams), fmt(ort),
            fmt(ort, "ms_per_batch"), fmt(get("pytorch")), fmt(get("torchscript")),
            "%.2fx" % (ours["images_per_sec"] / best) if best else "-",
            "%.0f" % (ours["rss_bytes"] / 1e6), "%.0f" % (ort["rss_bytes"] / 1e6) if ort else "-",
            wins, len(ours["by_rep"])))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
