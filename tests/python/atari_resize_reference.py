"""Digests of OpenCV's INTER_AREA 210x160 -> 84x84 on the synthetic frames of crates/repro-torch/tests/it/atari.rs.

crates/repro-torch/tests/it/atari.rs pins what this prints (`resize_matches_opencv_inter_area`); rerun it to re-derive:

    pip download opencv-python-headless --no-deps --only-binary=:all: -d /tmp/cv2 && unzip it,
    PYTHONPATH=<unzipped> python tests/python/atari_resize_reference.py

(checked with opencv-python-headless 5.0.0.93 and numpy 2.4.)
"""
import hashlib

import cv2
import numpy as np


def frames():
    r, c = np.meshgrid(np.arange(210), np.arange(160), indexing="ij")
    yield "ramp", ((r * 7 + c * 13 + (r * c) % 31) % 256).astype(np.uint8)
    # xorshift32 bytes, as the Rust test draws them
    x = 0x12345678
    out = np.empty(210 * 160, dtype=np.uint8)
    for i in range(out.size):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    yield "xorshift", out.reshape(210, 160)
    yield "checker", (((r // 3 + c // 2) % 2) * 255).astype(np.uint8)


for name, f in frames():
    small = cv2.resize(f, (84, 84), interpolation=cv2.INTER_AREA)
    print(name, hashlib.sha256(small.tobytes()).hexdigest(), small[:2, :6].tolist())
