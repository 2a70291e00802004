"""Reservoir computing: a fixed (non-learning) spiking network's spike counts, read out by a
linear classifier trained by gradient descent in torch.

``train.kind: readout``: present every training sample with learning off and count the
spikes of ``train.exc_population`` (the reservoir); standardise the counts (training mean
and standard deviation per neuron); fit softmax regression ``logits = z W + b`` by
full-batch Adam on the cross-entropy (``readout_epochs`` steps, ``readout_lr``,
``readout_weight_decay``); then classify the test set the same way.  Metrics:
``readout_train_accuracy``, ``test_accuracy`` (and ``train_images_per_s`` /
``test_images_per_s`` of the reservoir simulation).
"""

from __future__ import annotations

from typing import Any

import torch

from . import evaluation as ev
from .unsupervised import N_CLASSES, UnsupervisedRunner


def fit_readout(x: torch.Tensor, y: torch.Tensor, n_classes: int, epochs: int, lr: float, weight_decay: float,
                seed: int = 0) -> dict[str, torch.Tensor]:
    """Softmax regression on standardised features; returns ``{mean, std, W, b}``."""
    x = x.float()
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    z = (x - mean) / std
    g = torch.Generator().manual_seed(seed)
    W = (torch.randn(z.shape[1], n_classes, generator=g) * 0.01).requires_grad_()
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ W + b, y)
        loss.backward()
        opt.step()
    return {"mean": mean, "std": std, "W": W.detach(), "b": b.detach()}


def predict(readout: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    z = (x.float() - readout["mean"]) / readout["std"]
    return (z @ readout["W"] + readout["b"]).argmax(1)


class ReadoutRunner(UnsupervisedRunner):
    """Fixed reservoir + trained linear readout (see the module docstring)."""

    def train(self) -> None:
        t = self.cfg.train
        images, labels = self.data["train"]
        self.net.train(False)
        counts, ips = self.collect(images, learning=False, desc="reservoir (train)")
        ro = fit_readout(counts, labels, N_CLASSES, t.readout_epochs, t.readout_lr, t.readout_weight_decay, self.cfg.seed)
        self.progress.readout = ro
        self.progress.seen = len(images)
        acc = ev.accuracy(predict(ro, counts), labels)
        self.log({"train_images_per_s": ips, "readout_train_accuracy": acc,
                  "reservoir_mean_spikes": float(counts.float().sum(1).mean())}, self.progress.seen)
        self.checkpoint()

    def assign(self) -> None:  # no label assignment: the readout classifies
        return

    def test(self) -> dict[str, Any]:
        images, labels = self.data["test"]
        ro = getattr(self.progress, "readout", None)
        if len(images) == 0 or ro is None:
            return {}
        counts, ips = self.collect(images, learning=False, desc="reservoir (test)")
        pred = predict(ro, counts)
        metrics = {"test_accuracy": ev.accuracy(pred, labels), "test_images_per_s": ips}
        self.log(metrics, self.progress.seen)
        return {"metrics": metrics, "confusion": ev.confusion_matrix(pred, labels, N_CLASSES), "counts": counts}
