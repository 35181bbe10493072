#!/usr/bin/python3
"""A small net touching every importer path PyTorch's exporter takes, exported
at opsets 9, 11, 13 and 17, with PyTorch's outputs, for the opset test.

The net: Conv+BatchNorm+ReLU, a residual Add, LocalResponseNorm (exported
as its decomposition), ConstantPad2d with a non-zero value (opset 11 on:
pads computed by a ConstantOfShape/Reshape/Slice/Transpose chain) before
MaxPool with ceil_mode,
AvgPool with count_include_pad (exported as Pad + AveragePool), LeakyReLU,
Hardtanh (ReLU6, exported as Clip), Sigmoid, Concat, x.view(x.size(0), -1)
(exported as a Shape/Gather/Unsqueeze/Concat chain into Reshape), Linear,
Softmax. Writes tests/data/opsets/net_opset<N>.onnx and net_golden.txt
(batch 2 input from the zoo's deterministic sequence, then the outputs),
and lrn_even_opset13.onnx, a LocalResponseNorm of even size, which the
importer refuses.
"""
import os

import numpy as np
import torch
import torch.nn as nn

from export_models import det_uniform, fill_deterministic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.lrn = nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=1.5)
        self.pad = nn.ConstantPad2d((1, 0, 0, 1), 0.25)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.avg = nn.AvgPool2d(3, 1, padding=1, count_include_pad=True)
        self.branch = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(12 * 6 * 6, 10)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.conv2(y) + y)
        y = self.lrn(y)
        y = self.pool(self.pad(y))                         # 12x12 -> 13x13 -> 6x6 (ceil)
        a = nn.functional.leaky_relu(self.avg(y), 0.1)
        b = torch.sigmoid(nn.functional.hardtanh(self.branch(y), 0.0, 6.0))
        y = torch.cat([a, b], 1)                           # 12 channels
        y = y.view(y.size(0), -1)
        return torch.softmax(self.fc(y), 1)


def main():
    torch.manual_seed(0)
    net = Net().eval()
    fill_deterministic(net)
    out_dir = os.path.join(ROOT, "tests", "data", "opsets")
    os.makedirs(out_dir, exist_ok=True)
    x = det_uniform(1000000, 2 * 3 * 12 * 12).astype(np.float32).reshape(2, 3, 12, 12)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    with open(os.path.join(out_dir, "net_golden.txt"), "w") as f:
        f.write(" ".join("%.9g" % v for v in y.reshape(-1)) + "\n")
    for opset in (9, 11, 13, 17):
        torch.onnx.export(net, torch.zeros(1, 3, 12, 12), os.path.join(out_dir, "net_opset%d.onnx" % opset),
                          input_names=["input"], output_names=["probs"],
                          dynamic_axes={"input": {0: "N"}, "probs": {0: "N"}}, opset_version=opset)
        print("opset", opset)
    even = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LocalResponseNorm(4)).eval()
    torch.onnx.export(even, torch.zeros(1, 3, 12, 12), os.path.join(out_dir, "lrn_even_opset13.onnx"),
                      input_names=["input"], output_names=["y"], opset_version=13)


if __name__ == "__main__":
    main()
