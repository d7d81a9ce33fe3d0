"""Spectral norms by PyTorch, for crates/repro-torch/tests/it/sharpness.rs.

usage: spectral_norm.py DIR N
Reads DIR/w0.npy … DIR/w{N-1}.npy (written by the Rust test with Tensor::write_npy), writes a
kernel of its own to DIR/py_w.npy, and writes DIR/norms.npy: the N + 1 values of
torch.linalg.matrix_norm(W.reshape(out, -1), ord=2) in float64, the last one for py_w.
"""

import sys

import numpy as np
import torch


def norm(w: torch.Tensor) -> float:
    w = w.to(torch.float64)
    return float(torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2))


def main() -> None:
    d, n = sys.argv[1], int(sys.argv[2])
    norms = [norm(torch.from_numpy(np.load(f"{d}/w{i}.npy"))) for i in range(n)]
    g = torch.Generator().manual_seed(7)
    py_w = torch.randn(6, 2, 3, 3, generator=g, dtype=torch.float32)
    np.save(f"{d}/py_w.npy", py_w.numpy())
    norms.append(norm(py_w))
    np.save(f"{d}/norms.npy", np.array(norms, dtype=np.float64))
    print(" ".join(repr(x) for x in norms))


if __name__ == "__main__":
    main()
