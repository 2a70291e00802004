"""MNIST converted to N-MNIST-like event recordings by a simulated event camera, written in
N-MNIST's on-disk layout (``<out>/NMNIST/{Train,Test}/<digit>/<id>.bin``), so that
``+experiment=nmnist_stdp data.root=<out>`` runs on this machine without the real N-MNIST
(which cannot be downloaded here).  It is a stand-in for checking the pipeline and the
preset's scale, NOT N-MNIST: figures on it are labelled "synthetic" in RESULTS.md.

The conversion follows Orchard et al. (2015) in outline: the 28 x 28 digit (intensity in
[0, 1]) sits at the top-left of a 34 x 34 sensor and moves along three 105 ms saccades,
(0, 0) -> (3.5, 7) -> (7, 0) -> (0, 0) pixels (x, y); the image is sampled bilinearly every
millisecond; each pixel keeps a reference log intensity ``L_ref`` and emits ON (p = 1) /
OFF (p = 0) events while ``|log(I + 0.1) - L_ref| >= contrast``, moving ``L_ref`` by
``contrast`` per event; event times are the millisecond plus a uniform jitter in [0, 1000) µs.

    python experiments/analysis/synthetic_nmnist.py --out /tmp/snm --train 60000 --test 10000
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from snnrun.integrations.datasets import load_dataset  # noqa: E402
from snnrun.integrations.event_files import nmnist_path, write_nmnist_bin  # noqa: E402

SENSOR, SACCADE_MS = 34, 105
PATH = np.array([(0.0, 0.0), (3.5, 7.0), (7.0, 0.0), (0.0, 0.0)])  # (x, y) at the saccade ends


def offset(t_ms: float) -> tuple[float, float]:
    k = min(int(t_ms // SACCADE_MS), 2)
    f = (t_ms - k * SACCADE_MS) / SACCADE_MS
    x, y = PATH[k] + f * (PATH[k + 1] - PATH[k])
    return float(x), float(y)


def frame(images: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The images [B, 28, 28] shifted by (dx, dy) on the sensor [B, 34, 34], bilinear."""
    B = images.shape[0]
    out = np.zeros((B, SENSOR, SENSOR), dtype=np.float32)
    ix, iy = int(np.floor(dx)), int(np.floor(dy))
    fx, fy = dx - ix, dy - iy
    for oy, wy in ((iy, 1 - fy), (iy + 1, fy)):
        for ox, wx in ((ix, 1 - fx), (ix + 1, fx)):
            w = wx * wy
            if w == 0:
                continue
            h, wd = min(28, SENSOR - oy), min(28, SENSOR - ox)
            out[:, oy:oy + h, ox:ox + wd] += w * images[:, :h, :wd]
    return out


def convert(images: np.ndarray, contrast: float, rng: np.random.Generator) -> list:
    """Events (x, y, t_us, p) of each image [B, 28, 28]."""
    B = images.shape[0]
    ref = np.log(frame(images, 0, 0) + 0.1)
    events = [[] for _ in range(B)]
    for t in range(1, 3 * SACCADE_MS):
        level = np.log(frame(images, *offset(t)) + 0.1)
        while True:
            diff = level - ref
            on, off = diff >= contrast, diff <= -contrast
            if not (on.any() or off.any()):
                break
            for mask, p in ((on, 1), (off, 0)):
                b, y, x = np.nonzero(mask)
                tt = t * 1000 + rng.integers(0, 1000, size=len(b))
                for bi in np.unique(b):
                    sel = b == bi
                    events[bi].append((x[sel], y[sel], tt[sel], np.full(sel.sum(), p)))
            ref = ref + contrast * on - contrast * off
    out = []
    for ev in events:
        if not ev:
            out.append((np.zeros(0, int),) * 4)
            continue
        x, y, t, p = (np.concatenate(c) for c in zip(*ev))
        order = np.argsort(t, kind="stable")
        out.append((x[order], y[order], t[order], p[order]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=60000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--contrast", type=float, default=0.4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=500)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    for train, n in ((True, a.train), (False, a.test)):
        images, labels = load_dataset("mnist", train=train, n=n)
        images = images[:, 0].numpy()
        t0, n_events = time.time(), 0
        for start in range(0, n, a.chunk):
            recs = convert(images[start:start + a.chunk], a.contrast, rng)
            for i, (x, y, t, p) in enumerate(recs):
                write_nmnist_bin(nmnist_path(a.out, train, int(labels[start + i]), start + i), x, y, t, p)
                n_events += len(t)
        print(f"{'train' if train else 'test'}: {n} recordings, {n_events / max(n, 1):.0f} events each on average, "
              f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
