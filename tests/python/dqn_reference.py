"""PyTorch twins of the DQN stage's Q-networks and update, for crates/repro-torch/tests/it/rl.rs.

  count ARCH C H W A                       trainable parameters of the net
  forward ARCH C H W A WEIGHTS X OUT        Q-values of X (uint8 .npy) → OUT (.npy)
  update ARCH C H W A ONLINE TARGET BATCH_PREFIX GAMMA LR WD VARIANT EPS STEPS OUT_PREFIX
      STEPS updates on one batch (states/next_states uint8, actions int64, rewards and
      terminals float32, as BATCH_PREFIX.{name}.npy): Huber loss (mean, delta 1) of Q(s, a)
      against r + gamma (1 - terminal) max Q_target(s'), then torch.optim.Adam
      (VARIANT adam_l2: weight_decay=WD) or AdamW (adamw); writes OUT_PREFIX.losses.npy and the
      online net's weights as OUT_PREFIX.{name}.npy.

MinAtarNet is the `minatar` package's examples/dqn.py QNetwork; NatureNet is dopamine's JAX
NatureDQNNetwork (flax 'SAME' padding: pad total (out-1)*s + k - in, the extra pixel after).
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models import read_safetensors


class MinAtarNet(nn.Module):
    def __init__(self, c, h, w, actions):
        super().__init__()
        self.conv = nn.Conv2d(c, 16, kernel_size=3, stride=1)
        self.fc_hidden = nn.Linear(16 * (h - 2) * (w - 2), 128)
        self.output = nn.Linear(128, actions)

    def forward(self, x):
        x = F.relu(self.conv(x.float()))
        x = F.relu(self.fc_hidden(x.flatten(1)))
        return self.output(x)


def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2, out


class SameConv(nn.Module):
    def __init__(self, cin, cout, k, s):
        super().__init__()
        self.k, self.s = k, s
        self.conv = nn.Conv2d(cin, cout, k, stride=s)

    def forward(self, x):
        t, b, _ = same_pads(x.shape[2], self.k, self.s)
        l, r, _ = same_pads(x.shape[3], self.k, self.s)
        return self.conv(F.pad(x, (l, r, t, b)))


class NatureNet(nn.Module):
    def __init__(self, c, h, w, actions):
        super().__init__()
        specs = [(c, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)]
        for i, (cin, cout, k, s) in enumerate(specs, 1):
            setattr(self, f"conv{i}", SameConv(cin, cout, k, s))
            h, w = same_pads(h, k, s)[2], same_pads(w, k, s)[2]
        self.fc = nn.Linear(64 * h * w, 512)
        self.output = nn.Linear(512, actions)

    def forward(self, x):
        x = x.float() / 255.0
        for conv in (self.conv1, self.conv2, self.conv3):
            x = F.relu(conv(x))
        return self.output(F.relu(self.fc(x.flatten(1))))


def build(argv):
    arch, c, h, w, a = argv[0], *map(int, argv[1:5])
    return {"minatar": MinAtarNet, "nature": NatureNet}[arch](c, h, w, a)


def load(net, path):
    state = read_safetensors(path)
    # The Rust names put SameConv's conv directly under convN: map convN.weight → convN.conv.weight.
    fixed = {}
    for k, v in state.items():
        parts = k.split(".")
        if parts[0].startswith("conv") and parts[0] != "conv" and len(parts) == 2:
            k = f"{parts[0]}.conv.{parts[1]}"
        fixed[k] = v
    net.load_state_dict(fixed, strict=True)


def main(argv):
    cmd = argv[0]
    if cmd == "count":
        net = build(argv[1:6])
        print(sum(p.numel() for p in net.parameters()))
    elif cmd == "forward":
        net = build(argv[1:6])
        load(net, argv[6])
        with torch.no_grad():
            q = net(torch.from_numpy(np.load(argv[7])))
        np.save(argv[8], q.numpy())
    elif cmd == "update":
        online, target = build(argv[1:6]), build(argv[1:6])
        load(online, argv[6])
        load(target, argv[7])
        prefix = argv[8]
        gamma, lr, wd = map(float, argv[9:12])
        variant, eps, steps, out = argv[12], float(argv[13]), int(argv[14]), argv[15]
        b = {k: torch.from_numpy(np.load(f"{prefix}.{k}.npy"))
             for k in ["states", "actions", "rewards", "next_states", "terminals"]}
        opt_class = {"adam_l2": torch.optim.Adam, "adamw": torch.optim.AdamW}[variant]
        opt = opt_class(online.parameters(), lr=lr, eps=eps, weight_decay=wd)
        losses = []
        for _ in range(steps):
            q = online(b["states"]).gather(1, b["actions"].unsqueeze(1)).squeeze(1)
            with torch.no_grad():
                y = b["rewards"] + gamma * (1 - b["terminals"]) * target(b["next_states"]).amax(1)
            loss = F.huber_loss(q, y, reduction="mean", delta=1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        np.save(f"{out}.losses.npy", np.array(losses, dtype=np.float64))
        for k, v in online.state_dict().items():
            np.save(f"{out}.{k}.npy", v.numpy())
    else:
        raise SystemExit(f"unknown command {cmd}; see the docstring")


if __name__ == "__main__":
    main(sys.argv[1:])
