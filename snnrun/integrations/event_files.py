"""Writing event recordings in N-MNIST's on-disk format (what tonic's ``NMNIST`` reads), for
test fixtures and converted data sets.

One event is 5 bytes (Orchard et al.'s ATIS format, as ``tonic.io.read_mnist_file`` decodes it):

    byte 0: x    byte 1: y    byte 2: p << 7 | (t >> 16) & 0x7f    byte 3: (t >> 8) & 0xff    byte 4: t & 0xff

with ``t`` in microseconds, ``0 <= t < 2**23``, ``x, y < 240`` (``y == 240`` marks a timer
overflow) and ``p`` in {0, 1}.  A data set is ``<root>/NMNIST/{Train,Test}/<digit>/<id>.bin``.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["write_nmnist_bin", "nmnist_path"]


def write_nmnist_bin(path: str, x, y, t, p) -> None:
    """Write events (equal-length integer sequences) to ``path`` in the format above."""
    x, y, t, p = (np.asarray(v, dtype=np.int64).ravel() for v in (x, y, t, p))
    if not len(x) == len(y) == len(t) == len(p):
        raise ValueError(f"x, y, t, p differ in length: {len(x)}, {len(y)}, {len(t)}, {len(p)}")
    if len(t) and (t.min() < 0 or t.max() >= 1 << 23):
        raise ValueError(f"t must lie in [0, 2**23) µs, got [{t.min()}, {t.max()}]")
    if len(x) and (min(x.min(), y.min()) < 0 or max(x.max(), y.max()) >= 240):
        raise ValueError("x and y must lie in [0, 240)")
    if len(p) and not np.isin(p, (0, 1)).all():
        raise ValueError("p must be 0 or 1")
    raw = np.empty((len(t), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    raw.tofile(path)


def nmnist_path(root: str, train: bool, label: int, index: int) -> str:
    """Where recording ``index`` of class ``label`` goes: ``<root>/NMNIST/<Train|Test>/<label>/<index>.bin``."""
    return os.path.join(root, "NMNIST", "Train" if train else "Test", str(int(label)), f"{int(index):05d}.bin")
