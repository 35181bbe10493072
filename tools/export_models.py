#!/usr/bin/python3
"""Golden outputs from PyTorch for cnnserve's whole-model tests.

Builds each architecture in PyTorch (torchvision's for AlexNet, VGG and
ResNet; the same definitions as engine/zoo.cc for LeNet-5, the original
LRN AlexNet and the CIFAR ResNets), fills every parameter tensor, in
state_dict order, with the deterministic He-uniform values engine/zoo.cc
uses, runs the deterministic input at batch 1 and 3, and writes:

  tests/data/zoo_golden.txt        one line per (model, batch): name batch logits...
  tests/data/resnet20_cifar.onnx   the CIFAR ResNet-20 as torch.onnx.export writes it
  --onnx_dir DIR (optional)        every model as ONNX plus DIR/<model>.golden.txt,
                                   for the big-model check outside CI
                                   (tests/conformance/check_big_models.sh)

Needs python3-torch, python3-torchvision, python3-numpy (scripts/install-deps --python).
"""
import argparse
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torchvision

from train_digits import LeNet5  # the digits model's architecture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def det_uniform(seed, count):
    """Bit-for-bit DeterministicUniform of engine/zoo.cc: splitmix64 of (seed, i)."""
    with np.errstate(over="ignore"):
        i = np.arange(count, dtype=np.uint64)
        z = (np.uint64(seed) << np.uint64(32)) ^ i
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 * 2.0 - 1.0


def fill_deterministic(model):
    """Parameters and BN statistics in state_dict order, as ZooBuilder::Param."""
    seed = 0
    modules = dict(model.named_modules())
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        owner, _, kind = name.rpartition(".")
        module = modules[owner]
        u = det_uniform(seed, t.numel())
        seed += 1
        if isinstance(module, nn.BatchNorm2d):
            scale, center = {"weight": (0.1, 1.0), "bias": (0.1, 0.0),
                             "running_mean": (0.1, 0.0), "running_var": (0.25, 1.25)}[kind]
        elif kind == "weight":
            fan_in = t[0].numel()
            scale, center = math.sqrt(6.0 / fan_in), 0.0
        else:
            scale, center = 0.1, 0.0
        values = (center + scale * u).astype(np.float32).reshape(tuple(t.shape))
        t.copy_(torch.from_numpy(values))


class AlexNetLRN(nn.Module):
    """The original AlexNet (96-256-384-384-256, LRN after the first two convs)."""

    def __init__(self):
        super().__init__()
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, 4, 2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(9216, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, 1000))

    def forward(self, x):
        return self.classifier(self.features(x))


class CifarBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, planes in enumerate([16, 32, 64]):
            for i in range(n):
                blocks.append(CifarBlock(cin, planes, 2 if i == 0 and stage > 0 else 1))
                cin = planes
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


MODELS = {
    "lenet5": (LeNet5, (1, 32, 32)),
    "alexnet": (lambda: torchvision.models.alexnet(), (3, 224, 224)),
    "alexnet_lrn": (AlexNetLRN, (3, 224, 224)),
    "vgg11": (lambda: torchvision.models.vgg11(), (3, 224, 224)),
    "resnet18": (lambda: torchvision.models.resnet18(), (3, 224, 224)),
    "resnet20_cifar": (lambda: CifarResNet(3), (3, 32, 32)),
}
BIG_MODELS = {
    "resnet50": (lambda: torchvision.models.resnet50(), (3, 224, 224)),
    "vgg16": (lambda: torchvision.models.vgg16(), (3, 224, 224)),
}


def golden_lines(name, model, chw):
    lines = []
    for batch in (1, 3):
        x = det_uniform(1000000, batch * int(np.prod(chw))).astype(np.float32)
        with torch.no_grad():
            y = model(torch.from_numpy(x).reshape(batch, *chw)).numpy()
        lines.append(" ".join([name, str(batch)] + ["%.9g" % v for v in y.reshape(-1)]))
    return lines


def build(factory):
    torch.manual_seed(0)
    model = factory().eval()
    fill_deterministic(model)
    return model


def export_onnx(model, chw, path):
    torch.onnx.export(model, torch.zeros(1, *chw), path, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      opset_version=13)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--onnx_dir", help="also write every model as ONNX with goldens here")
    parser.add_argument("--onnx_only", action="store_true",
                        help="with --onnx_dir: leave tests/data alone (for bench/compare_engines)")
    args = parser.parse_args()
    torch.set_num_threads(2)

    lines = []
    for name, (factory, chw) in ({} if args.onnx_only else MODELS).items():
        model = build(factory)
        lines += golden_lines(name, model, chw)
        print("golden:", name)
        if name == "resnet20_cifar":
            export_onnx(model, chw, os.path.join(ROOT, "tests", "data", "resnet20_cifar.onnx"))
        if args.onnx_dir:
            os.makedirs(args.onnx_dir, exist_ok=True)
            export_onnx(model, chw, os.path.join(args.onnx_dir, name + ".onnx"))
    if not args.onnx_only:
        with open(os.path.join(ROOT, "tests", "data", "zoo_golden.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")

    if args.onnx_dir:
        for name, (factory, chw) in {**MODELS, **BIG_MODELS}.items():
            model = build(factory)
            if name in BIG_MODELS or args.onnx_only:
                export_onnx(model, chw, os.path.join(args.onnx_dir, name + ".onnx"))
            with open(os.path.join(args.onnx_dir, name + ".golden.txt"), "w") as f:
                f.write("\n".join(golden_lines(name, model, chw)) + "\n")
            print("onnx:", name)


if __name__ == "__main__":
    main()
