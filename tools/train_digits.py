#!/usr/bin/python3
"""Trains LeNet-5 on scikit-learn's handwritten digits and exports it to ONNX.

Produces, relative to the repository root:
  models/digits_lenet5/1/model.onnx   the served model (input [N,1,32,32], output [N,10] logits)
  models/digits_lenet5/labels.txt     one label per class index
  tests/data/digits_heldout.csv       the held-out split: label, 64 pixels (uint8, 0-255),
                                      then PyTorch's 10 logits for that image
  tests/data/digits_accuracy.txt      the held-out accuracy this script printed
  samples/digit_<label>_<index>.png   a few held-out images as 8-bit grayscale PNGs

Preprocessing is the one the server and client apply to an 8-bit grayscale image:
pixel/255, then nearest-neighbour resize to 32x32. The 0..16 values of
load_digits are first quantised to 8 bits (round(v*255/16)) exactly as they are
stored in the PNGs, so training sees what serving sees.

Needs Debian's python3-torch, python3-sklearn and python3-onnx
(scripts/install-deps --python). Python is never needed to build, serve or test.
"""
import os
import random
import zlib
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20261204


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def preprocess(pixels_u8):
    """[N,64] uint8 -> [N,1,32,32] float, as cnnserve's image path does it."""
    x = torch.from_numpy(pixels_u8.astype(np.float32) / 255.0).reshape(-1, 1, 8, 8)
    return F.interpolate(x, size=(32, 32), mode="nearest")


def write_png_gray8(path, img):
    """Minimal 8-bit grayscale PNG writer (no Pillow needed)."""
    h, w = img.shape
    raw = b"".join(b"\x00" + bytes(img[r].tolist()) for r in range(h))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main():
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)

    digits = load_digits()
    pixels = np.rint(digits.data * 255.0 / 16.0).astype(np.uint8)  # [N,64]
    labels = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        pixels, labels, test_size=0.2, random_state=0, stratify=labels)

    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = preprocess(x_tr), torch.from_numpy(y_tr)
    for epoch in range(30):
        model.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()

    model.eval()
    with torch.no_grad():
        logits = model(preprocess(x_te))
    pred = logits.argmax(1).numpy()
    correct = int((pred == y_te).sum())
    accuracy = correct / len(y_te)
    print(f"held-out accuracy: {accuracy:.4f} ({correct}/{len(y_te)})")

    model_dir = os.path.join(ROOT, "models", "digits_lenet5")
    os.makedirs(os.path.join(model_dir, "1"), exist_ok=True)
    torch.onnx.export(model, torch.zeros(1, 1, 32, 32),
                      os.path.join(model_dir, "1", "model.onnx"),
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      opset_version=13)
    with open(os.path.join(model_dir, "labels.txt"), "w") as f:
        f.write("".join(f"{d}\n" for d in range(10)))

    data_dir = os.path.join(ROOT, "tests", "data")
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "digits_heldout.csv"), "w") as f:
        for img, y, lg in zip(x_te, y_te, logits.numpy()):
            f.write(",".join([str(int(y))] + [str(int(p)) for p in img] +
                             [repr(float(v)) for v in lg]) + "\n")
    with open(os.path.join(data_dir, "digits_accuracy.txt"), "w") as f:
        f.write(f"{correct} {len(y_te)}\n")

    # One correctly classified held-out image per digit for the README example.
    sample_dir = os.path.join(ROOT, "samples")
    os.makedirs(sample_dir, exist_ok=True)
    for d in range(10):
        i = next(i for i in range(len(y_te)) if y_te[i] == d and pred[i] == d)
        write_png_gray8(os.path.join(sample_dir, f"digit_{d}.png"),
                        x_te[i].reshape(8, 8))


if __name__ == "__main__":
    main()
