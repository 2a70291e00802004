"""Diehl & Cook (2015) label assignment and spike-count classification, in plain torch.

After (or during) unsupervised training, each excitatory neuron is assigned the class for
which its mean spike count is highest (:func:`assign_labels`).  A sample is then classified
from its spike counts either by

* :func:`all_activity`: the class whose assigned neurons fired most on average, or
* :func:`proportion_weighting`: the same, with each neuron's count weighted by the share of
  its (class-averaged) firing that belongs to that class.

This follows BindsNET's ``bindsnet.evaluation`` (``assign_labels``, ``all_activity``,
``proportion_weighting``) with two deliberate differences: neurons that never fired get the
assignment ``-1`` instead of class 0, and classes that no neuron is assigned to score ``-1``
so that they never win.

Every function works on the device of its inputs and never leaves it, except for the input
checks (one host sync each) and :func:`accuracy`, which returns a Python float.
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["assign_labels", "all_activity", "proportion_weighting", "confusion_matrix", "accuracy", "UNASSIGNED"]

UNASSIGNED = -1
"""The assignment of a neuron that never fired."""


def assign_labels(counts: torch.Tensor, labels: torch.Tensor, n_classes: int, rates: Optional[torch.Tensor] = None,
                  alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Assign each neuron the class it fires most for (Diehl & Cook 2015).

    ``rates[:, c] = alpha * rates_prev[:, c] + mean spike count of the neuron over the samples
    of class c in this window``.  A class absent from the window adds 0 (no division by zero).
    With ``alpha = 1`` and ``rates`` passed back in each window, the rates accumulate; with
    ``alpha < 1`` older windows fade out.

    Args:
        counts: spike counts of each neuron for each sample (any numeric dtype).
        labels: the class of each sample, in ``[0, n_classes)``.
        n_classes: the number of classes.
        rates: the rates returned by the previous call, or ``None`` to start from zero.
        alpha: decay applied to ``rates`` before adding this window's means.

    Returns:
        ``(assignments, proportions, rates)``:

        * ``assignments``: ``long``, the class with the highest rate (the lowest class index on
          ties); :data:`UNASSIGNED` (``-1``) for a neuron whose rates are all zero, i.e. one that
          never fired in this window (nor in the windows carried in by ``rates``).
        * ``proportions``: ``rates`` divided by the neuron's total rate; rows of zeros for
          neurons that never fired.
        * ``rates``: the updated rates, to pass to the next call.

    Shapes:
        counts: ``[N_samples, n_neurons]``; labels: ``[N_samples]``;
        rates (in and out), proportions: ``[n_neurons, n_classes]``; assignments: ``[n_neurons]``.
    """
    counts = _counts(counts, "counts")
    labels = _labels(labels, counts, n_classes, "labels")
    n_neurons = counts.shape[1]
    one_hot = torch.nn.functional.one_hot(labels, n_classes).to(counts.dtype)  # [N, C]
    per_class = one_hot.T @ counts  # [C, n]: summed counts per class
    n_per_class = one_hot.sum(0).clamp_(min=1).unsqueeze(1)  # [C, 1]; absent classes: 0 / 1 = 0
    mean = (per_class / n_per_class).T  # [n, C]
    if rates is None:
        new_rates = mean
    else:
        if tuple(rates.shape) != (n_neurons, n_classes):
            raise ValueError(f"rates has shape {tuple(rates.shape)}, expected [n_neurons, n_classes] = "
                             f"[{n_neurons}, {n_classes}]")
        new_rates = alpha * rates.to(device=counts.device, dtype=counts.dtype) + mean
    total = new_rates.sum(1, keepdim=True)  # [n, 1]
    fired = total > 0
    proportions = torch.where(fired, new_rates / torch.where(fired, total, torch.ones_like(total)),
                              torch.zeros_like(new_rates))
    unassigned = torch.full((n_neurons,), UNASSIGNED, dtype=torch.long, device=counts.device)
    assignments = torch.where(fired.squeeze(1), new_rates.argmax(1), unassigned)
    return assignments, proportions, new_rates


def all_activity(counts: torch.Tensor, assignments: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Classify samples by the class whose assigned neurons have the highest mean spike count.

    A class with no assigned neuron scores ``-1`` and so never wins while some class has
    neurons.  Ties (e.g. a sample with no spikes at all) go to the lowest class index.

    Args:
        counts: spike counts of each neuron for each sample.
        assignments: each neuron's class from :func:`assign_labels` (``-1`` = unassigned, ignored).
        n_classes: the number of classes.

    Returns:
        The predicted class of each sample (``long``).

    Shapes:
        counts: ``[N_samples, n_neurons]``; assignments: ``[n_neurons]``; returns ``[N_samples]``.
    """
    counts = _counts(counts, "counts")
    member = _membership(assignments, counts, n_classes)  # [n, C]
    return _classify(counts @ member, member)


def proportion_weighting(counts: torch.Tensor, assignments: torch.Tensor, proportions: torch.Tensor,
                         n_classes: int) -> torch.Tensor:
    """Classify samples by proportion-weighted spike counts of each class's assigned neurons.

    Score of class ``c`` = sum over neurons ``i`` assigned to ``c`` of
    ``counts[:, i] * proportions[i, c]``, divided by the number of neurons assigned to ``c``
    (``-1`` for a class with no neuron).  The predicted class has the highest score.

    Args:
        counts: spike counts of each neuron for each sample.
        assignments: each neuron's class from :func:`assign_labels` (``-1`` = unassigned, ignored).
        proportions: from :func:`assign_labels`.
        n_classes: the number of classes.

    Returns:
        The predicted class of each sample (``long``).

    Shapes:
        counts: ``[N_samples, n_neurons]``; assignments: ``[n_neurons]``;
        proportions: ``[n_neurons, n_classes]``; returns ``[N_samples]``.
    """
    counts = _counts(counts, "counts")
    member = _membership(assignments, counts, n_classes)
    if tuple(proportions.shape) != tuple(member.shape):
        raise ValueError(f"proportions has shape {tuple(proportions.shape)}, expected [n_neurons, n_classes] = "
                         f"[{member.shape[0]}, {n_classes}]")
    weights = member * proportions.to(device=counts.device, dtype=counts.dtype)
    return _classify(counts @ weights, member)


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Count (true class, predicted class) pairs.

    Returns:
        ``long`` matrix whose entry ``[t, p]`` is the number of samples of class ``t``
        predicted as ``p`` (rows: true class, columns: prediction); it sums to ``N``.

    Shapes:
        pred, labels: ``[N]``; returns ``[n_classes, n_classes]``.
    """
    pred = pred.reshape(-1).long()
    labels = labels.reshape(-1).long().to(pred.device)
    if pred.shape != labels.shape:
        raise ValueError(f"pred has {pred.numel()} entries but labels has {labels.numel()}")
    for name, t in (("pred", pred), ("labels", labels)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_classes):
            raise ValueError(f"{name} has values in [{int(t.min())}, {int(t.max())}], outside [0, {n_classes})")
    flat = torch.bincount(labels * n_classes + pred, minlength=n_classes * n_classes)
    return flat.view(n_classes, n_classes)


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of samples (in ``[0, 1]``, not percent) whose prediction equals the label.

    Shapes:
        pred, labels: ``[N]`` with ``N > 0``.
    """
    pred = pred.reshape(-1)
    labels = labels.reshape(-1).to(pred.device)
    if pred.shape != labels.shape:
        raise ValueError(f"pred has {pred.numel()} entries but labels has {labels.numel()}")
    if pred.numel() == 0:
        raise ValueError("accuracy of zero samples is undefined (pred and labels are empty)")
    return int((pred.long() == labels.long()).sum()) / pred.numel()  # exact: 655 / 1000 is 0.655


# --------------------------------------------------------------------------- helpers
def _counts(counts: torch.Tensor, name: str) -> torch.Tensor:
    if counts.dim() != 2:
        raise ValueError(f"{name} must be 2-D [N_samples, n_neurons], got shape {tuple(counts.shape)}")
    return counts if counts.is_floating_point() else counts.float()


def _labels(labels: torch.Tensor, counts: torch.Tensor, n_classes: int, name: str) -> torch.Tensor:
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    labels = labels.reshape(-1).long().to(counts.device)
    if labels.numel() != counts.shape[0]:
        raise ValueError(f"{name} has {labels.numel()} entries but counts has {counts.shape[0]} samples")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"{name} has values in [{int(labels.min())}, {int(labels.max())}], outside [0, {n_classes})")
    return labels


def _membership(assignments: torch.Tensor, counts: torch.Tensor, n_classes: int) -> torch.Tensor:
    """One-hot ``[n_neurons, n_classes]`` of the assignments; unassigned neurons get a zero row."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    assignments = assignments.reshape(-1).long().to(counts.device)
    if assignments.numel() != counts.shape[1]:
        raise ValueError(f"assignments has {assignments.numel()} entries but counts has {counts.shape[1]} neurons")
    if assignments.numel() and (int(assignments.min()) < UNASSIGNED or int(assignments.max()) >= n_classes):
        raise ValueError(f"assignments has values in [{int(assignments.min())}, {int(assignments.max())}], "
                         f"outside [-1, {n_classes})")
    classes = torch.arange(n_classes, device=counts.device)
    return (assignments.unsqueeze(1) == classes).to(counts.dtype)


def _classify(summed: torch.Tensor, member: torch.Tensor) -> torch.Tensor:
    """Divide per-class sums ``[N, C]`` by the class sizes; empty classes score -1; argmax."""
    n_assigned = member.sum(0)  # [C]
    has = n_assigned > 0
    scores = torch.where(has, summed / torch.where(has, n_assigned, torch.ones_like(n_assigned)),
                         torch.full_like(summed, -1.0))
    return scores.argmax(1)


# ----------------------------------------------------------------------------- linear readout
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
