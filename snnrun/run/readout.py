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


from . import evaluation as ev
from .evaluation import fit_readout, predict
from .unsupervised import UnsupervisedRunner

__all__ = ["ReadoutRunner", "fit_readout", "predict"]


class ReadoutRunner(UnsupervisedRunner):
    """Fixed reservoir + trained linear readout (see the module docstring)."""

    def train(self) -> None:
        t = self.cfg.train
        images, labels = self.data["train"]
        self.net.train(False)
        counts, ips = self.collect(images, learning=False, desc="reservoir (train)")
        ro = fit_readout(counts, labels, self.n_classes, t.readout_epochs, t.readout_lr, t.readout_weight_decay, self.cfg.seed)
        self.progress.readout = ro
        self.progress.seen = len(images)
        acc = ev.accuracy(predict(ro, counts), labels)
        self.log({"train_images_per_s": ips, "readout_train_accuracy": acc,
                  "reservoir_mean_spikes": float(counts.double().sum(1).mean())}, self.progress.seen)
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
        return {"metrics": metrics, "confusion": ev.confusion_matrix(pred, labels, self.n_classes), "counts": counts}
