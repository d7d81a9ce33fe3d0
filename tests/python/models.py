"""Reference definitions, in plain PyTorch, of the nets in crates/repro-torch/src/nn (kuangliu/pytorch-cifar style,
same module names so a state_dict saved by the Rust VarStore loads strictly).

Commands:
  count <arch> <classes> <width> [<arch> <classes> <width> ...]
      print the trainable parameter count of each, one a line
  forward <arch> <classes> <width> <weights.safetensors> <input.npy> <out_prefix>
      load the weights, run the input in eval mode and in train mode (batch statistics),
      write <out_prefix>.eval.npy and <out_prefix>.train.npy
"""

import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)


def channels(base, width):
    # Same as Rust's f64::round (half away from zero) for positive values.
    return max(1, int(math.floor(base * width + 0.5)))


# ---------------------------------------------------------------- small CNN


class SmallBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class SmallCnn(nn.Module):
    def __init__(self, classes, width):
        super().__init__()
        w = channels(32, width)
        self.b1 = SmallBlock(3, w)
        self.b2 = SmallBlock(w, 2 * w)
        self.b3 = SmallBlock(2 * w, 4 * w)
        self.fc = nn.Linear(4 * w, classes)

    def forward(self, x):
        x = F.max_pool2d(self.b1(x), 2)
        x = F.max_pool2d(self.b2(x), 2)
        x = self.b3(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# ---------------------------------------------------------------- ResNet


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, self.expansion * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(self.expansion * planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, classes, width):
        super().__init__()
        self.in_planes = channels(64, width)
        self.conv1 = nn.Conv2d(3, self.in_planes, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.in_planes)
        self.layer1 = self._make_layer(block, channels(64, width), num_blocks[0], 1)
        self.layer2 = self._make_layer(block, channels(128, width), num_blocks[1], 2)
        self.layer3 = self._make_layer(block, channels(256, width), num_blocks[2], 2)
        self.layer4 = self._make_layer(block, channels(512, width), num_blocks[3], 2)
        self.linear = nn.Linear(self.in_planes, classes)

    def _make_layer(self, block, planes, n, stride):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


# ---------------------------------------------------------------- DenseNet


class DenseLayer(nn.Module):
    def __init__(self, in_planes, growth):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    def __init__(self, in_planes, out_planes):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    def __init__(self, nblocks, growth, classes, reduction=0.5):
        super().__init__()
        c = 2 * growth
        self.conv1 = nn.Conv2d(3, c, 3, padding=1, bias=False)
        for b, n in enumerate(nblocks):
            layers = []
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            setattr(self, f"dense{b + 1}", nn.Sequential(*layers))
            if b + 1 < len(nblocks):
                out = int(math.floor(c * reduction))
                setattr(self, f"trans{b + 1}", Transition(c, out))
                c = out
        self.bn = nn.BatchNorm2d(c)
        self.linear = nn.Linear(c, classes)

    def forward(self, x):
        out = self.conv1(x)
        out = self.trans1(self.dense1(out))
        out = self.trans2(self.dense2(out))
        out = self.trans3(self.dense3(out))
        out = self.dense4(out)
        out = F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1).flatten(1)
        return self.linear(out)


def build(arch, classes, width):
    if arch == "small_cnn":
        return SmallCnn(classes, width)
    if arch == "resnet18":
        return ResNet(BasicBlock, [2, 2, 2, 2], classes, width)
    if arch == "resnet50":
        return ResNet(Bottleneck, [3, 4, 6, 3], classes, width)
    if arch == "densenet121":
        return DenseNet([6, 12, 24, 16], channels(32, width), classes)
    raise SystemExit(f"unknown arch {arch}")


# ---------------------------------------------------------------- safetensors

DTYPES = {
    "F32": np.float32,
    "F64": np.float64,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "U8": np.uint8,
}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    body = data[8 + n :]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES[meta["dtype"]]
        start, end = meta["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=dtype).reshape(meta["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def load_strict(model, state):
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    bad = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in state
        if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or bad:
        raise SystemExit(
            f"state_dict mismatch:\n missing {missing}\n unexpected {unexpected}\n shapes {bad}"
        )
    res = model.load_state_dict(state, strict=False)
    assert all(k.endswith("num_batches_tracked") for k in res.missing_keys), res
    assert not res.unexpected_keys, res


def main(argv):
    cmd = argv[0]
    if cmd == "count":
        rest = argv[1:]
        if not rest or len(rest) % 3:
            raise SystemExit("count takes <arch> <classes> <width> triples")
        for i in range(0, len(rest), 3):
            m = build(rest[i], int(rest[i + 1]), float(rest[i + 2]))
            print(sum(p.numel() for p in m.parameters() if p.requires_grad))
    elif cmd == "forward":
        arch, classes, width = argv[1], int(argv[2]), float(argv[3])
        weights, inp, prefix = argv[4], argv[5], argv[6]
        m = build(arch, classes, width)
        load_strict(m, read_safetensors(weights))
        x = torch.from_numpy(np.load(inp)).float()
        with torch.no_grad():
            m.eval()
            np.save(prefix + ".eval.npy", m(x).numpy())
            m.train()
            np.save(prefix + ".train.npy", m(x).numpy())
    else:
        raise SystemExit(f"unknown command {cmd}; see the docstring")


if __name__ == "__main__":
    main(sys.argv[1:])
