#!/usr/bin/python3
"""PyTorch (eager and TorchScript-frozen) on the same grid as cnnserve-bench.

  python3 torch_bench.py --model=resnet50 --batch=1,8,32 --threads=1,2 --seconds=S --json=OUT
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torchvision

SHAPES = {"lenet5": (1, 32, 32), "resnet20_cifar": (3, 32, 32)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--batch", default="1,8,32")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--json")
    a = p.parse_args()
    model = getattr(torchvision.models, a.model)().eval()
    chw = SHAPES.get(a.model, (3, 224, 224))
    rows = []
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        for batch in [int(b) for b in a.batch.split(",")]:
            x = torch.rand(batch, *chw)
            with torch.no_grad():
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
                for engine, fn in (("pytorch", model), ("torchscript", frozen)):
                    for _ in range(3):
                        fn(x)
                    times = []
                    end = time.perf_counter() + a.seconds
                    while time.perf_counter() < end or len(times) < 3:
                        t0 = time.perf_counter()
                        fn(x)
                        times.append((time.perf_counter() - t0) * 1000)
                    ms = statistics.median(times)
                    row = {"engine": engine, "model": a.model, "batch": batch, "threads": threads,
                           "streams": 1, "images_per_sec": batch * 1000 / ms, "ms_per_batch": ms,
                           "rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f)


if __name__ == "__main__":
    main()
