"""Tests of snnrun.run.evaluation on hand-made spike counts whose answers are worked out below."""

from __future__ import annotations

import pytest
import torch

from snnrun.run.evaluation import (
    UNASSIGNED,
    accuracy,
    all_activity,
    assign_labels,
    confusion_matrix,
    proportion_weighting,
)

# 4 samples x 5 neurons, 2 classes.  Neuron 4 never fires.
COUNTS = torch.tensor([
    [4, 2, 0, 0, 0],  # class 0
    [2, 2, 0, 0, 0],  # class 0
    [0, 0, 3, 1, 0],  # class 1
    [0, 1, 1, 3, 0],  # class 1
], dtype=torch.float32)
LABELS = torch.tensor([0, 0, 1, 1])
# mean count per class:        class 0          class 1
#   neuron 0: (4+2)/2 = 3       (0+0)/2 = 0
#   neuron 1: (2+2)/2 = 2       (0+1)/2 = 0.5
#   neuron 2: 0                 (3+1)/2 = 2
#   neuron 3: 0                 (1+3)/2 = 2
#   neuron 4: 0                 0              -> never fired: unassigned
RATES = torch.tensor([[3.0, 0.0], [2.0, 0.5], [0.0, 2.0], [0.0, 2.0], [0.0, 0.0]])
ASSIGNMENTS = torch.tensor([0, 0, 1, 1, UNASSIGNED])
# proportions = rates / row sum: neuron 1: 2 / 2.5 = 0.8 and 0.5 / 2.5 = 0.2; neuron 4: zeros
PROPORTIONS = torch.tensor([[1.0, 0.0], [0.8, 0.2], [0.0, 1.0], [0.0, 1.0], [0.0, 0.0]])


# -------------------------------------------------------------------------- assign_labels
def test_assign_labels_by_hand():
    assignments, proportions, rates = assign_labels(COUNTS, LABELS, 2)
    assert assignments.dtype == torch.long
    assert assignments.tolist() == ASSIGNMENTS.tolist()
    assert torch.allclose(rates, RATES)
    assert torch.allclose(proportions, PROPORTIONS)


def test_silent_neurons_are_unassigned_with_zero_proportions():
    assignments, proportions, rates = assign_labels(torch.zeros(3, 4), torch.tensor([0, 1, 2]), 3)
    assert assignments.tolist() == [UNASSIGNED] * 4 == [-1] * 4
    assert torch.equal(proportions, torch.zeros(4, 3)) and torch.equal(rates, torch.zeros(4, 3))
    assert torch.isfinite(proportions).all()


def test_absent_class_contributes_zero_without_nan():
    # three classes, but no sample of class 2 in the window: its column is 0, not 0/0
    assignments, proportions, rates = assign_labels(COUNTS, LABELS, 3)
    assert rates.shape == (5, 3) and proportions.shape == (5, 3)
    assert torch.isfinite(rates).all() and torch.isfinite(proportions).all()
    assert torch.equal(rates[:, 2], torch.zeros(5))
    assert torch.allclose(rates[:, :2], RATES)
    assert assignments.tolist() == ASSIGNMENTS.tolist()


@pytest.mark.parametrize("alpha, expected_rates, expected_assignments, neuron3_proportions", [
    # second window: one class-0 sample where only neuron 3 fires, 4 spikes; class 1 absent (adds 0).
    # alpha = 1:   rates = RATES + [[0,0],[0,0],[0,0],[4,0],[0,0]]
    #   neuron 3: [0+4, 2+0] = [4, 2] -> class 0, proportions [4/6, 2/6]
    (1.0, [[3, 0], [2, 0.5], [0, 2], [4, 2], [0, 0]], [0, 0, 1, 0, -1], [2 / 3, 1 / 3]),
    # alpha = 0.5: rates = 0.5 * RATES + the same
    #   neuron 0: [1.5, 0]; neuron 1: [1, 0.25]; neuron 2: [0, 1]; neuron 3: [0 + 4, 1 + 0] = [4, 1]
    (0.5, [[1.5, 0], [1, 0.25], [0, 1], [4, 1], [0, 0]], [0, 0, 1, 0, -1], [0.8, 0.2]),
    # alpha = 0: only the new window counts: every neuron but 3 is silent
    (0.0, [[0, 0], [0, 0], [0, 0], [4, 0], [0, 0]], [-1, -1, -1, 0, -1], [1.0, 0.0]),
])
def test_rates_accumulate_with_alpha(alpha, expected_rates, expected_assignments, neuron3_proportions):
    _, _, rates = assign_labels(COUNTS, LABELS, 2)
    window = torch.tensor([[0, 0, 0, 4, 0]])
    assignments, proportions, rates = assign_labels(window, torch.tensor([0]), 2, rates=rates, alpha=alpha)
    assert torch.allclose(rates, torch.tensor(expected_rates, dtype=torch.float32))
    assert assignments.tolist() == expected_assignments
    assert torch.allclose(proportions[3], torch.tensor(neuron3_proportions))


def test_assign_labels_accepts_integer_counts_and_keeps_float64():
    assignments, _, rates = assign_labels(COUNTS.long(), LABELS, 2)
    assert rates.dtype == torch.float32 and assignments.tolist() == ASSIGNMENTS.tolist()
    _, _, rates64 = assign_labels(COUNTS.double(), LABELS, 2)
    assert rates64.dtype == torch.float64


def test_ties_go_to_the_lowest_class():
    # one neuron firing equally for both classes
    assignments, proportions, _ = assign_labels(torch.tensor([[2.0], [2.0]]), torch.tensor([0, 1]), 2)
    assert assignments.tolist() == [0]
    assert torch.allclose(proportions, torch.tensor([[0.5, 0.5]]))


# ------------------------------------------------------------------------ classification
def test_all_activity_by_hand():
    test_counts = torch.tensor([
        [5, 5, 1, 1, 0],  # class 0 mean (5+5)/2 = 5, class 1 mean (1+1)/2 = 1 -> 0
        [0, 0, 2, 2, 9],  # class 0: 0, class 1: 2; neuron 4 is unassigned and ignored -> 1
        [1, 0, 0, 3, 0],  # class 0: 0.5, class 1: 1.5 -> 1
    ], dtype=torch.float32)
    assert all_activity(test_counts, ASSIGNMENTS, 2).tolist() == [0, 1, 1]
    # the classification of the training samples themselves: all correct
    pred = all_activity(COUNTS, ASSIGNMENTS, 2)
    assert pred.tolist() == LABELS.tolist() and accuracy(pred, LABELS) == 1.0


def test_classes_without_neurons_never_win():
    # no neuron is assigned to class 0 or 2; a silent sample scores 0 for class 1, -1 for the others
    assignments = torch.tensor([1, 1, UNASSIGNED])
    silent = torch.zeros(2, 3)
    assert all_activity(silent, assignments, 3).tolist() == [1, 1]
    props = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert proportion_weighting(silent, assignments, props, 3).tolist() == [1, 1]


def test_proportion_weighting_differs_from_all_activity():
    assignments = torch.tensor([0, 0, 1, 1])
    proportions = torch.tensor([[0.6, 0.4], [0.6, 0.4], [0.0, 1.0], [0.0, 1.0]])
    counts = torch.tensor([[2.0, 2.0, 0.0, 3.0]])
    # all activity:          class 0: (2 + 2) / 2 = 2            class 1: (0 + 3) / 2 = 1.5  -> 0
    # proportion weighting:  class 0: (2*0.6 + 2*0.6) / 2 = 1.2  class 1: (0*1 + 3*1) / 2 = 1.5 -> 1
    assert all_activity(counts, assignments, 2).tolist() == [0]
    assert proportion_weighting(counts, assignments, proportions, 2).tolist() == [1]


def test_proportion_weighting_by_hand_from_assign_labels():
    # with PROPORTIONS: sample [0, 5, 1, 0, 7]:
    #   class 0: (0*1.0 + 5*0.8) / 2 = 2.0;  class 1: (1*1.0 + 0*1.0) / 2 = 0.5  -> 0
    # sample [0, 5, 3, 2, 0]:
    #   class 0: (0 + 4) / 2 = 2.0;          class 1: (3 + 2) / 2 = 2.5        -> 1
    counts = torch.tensor([[0.0, 5.0, 1.0, 0.0, 7.0], [0.0, 5.0, 3.0, 2.0, 0.0]])
    assert proportion_weighting(counts, ASSIGNMENTS, PROPORTIONS, 2).tolist() == [0, 1]


# ---------------------------------------------------------------- confusion and accuracy
def test_confusion_matrix_by_hand():
    pred = torch.tensor([0, 1, 1, 2, 2, 2])
    labels = torch.tensor([0, 1, 2, 2, 2, 0])
    cm = confusion_matrix(pred, labels, 3)
    # rows: true class, columns: predicted class
    # true 0: predicted 0 once, 2 once; true 1: predicted 1; true 2: predicted 1 once, 2 twice
    assert cm.dtype == torch.long
    assert cm.tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]
    assert int(cm.sum()) == 6
    assert cm.sum(1).tolist() == torch.bincount(labels, minlength=3).tolist()  # [2, 1, 3]
    assert cm.sum(0).tolist() == torch.bincount(pred, minlength=3).tolist()  # [1, 2, 3]
    assert accuracy(pred, labels) == pytest.approx(int(cm.trace()) / 6) == pytest.approx(4 / 6)


def test_confusion_matrix_has_all_classes():
    cm = confusion_matrix(torch.tensor([0]), torch.tensor([0]), 10)
    assert cm.shape == (10, 10) and int(cm.sum()) == 1


# ---------------------------------------------------------------------------- bad input
def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"counts must be 2-D .* got shape \(4,\)"):
        assign_labels(torch.zeros(4), LABELS, 2)
    with pytest.raises(ValueError, match="labels has 3 entries but counts has 4 samples"):
        assign_labels(COUNTS, LABELS[:3], 2)
    with pytest.raises(ValueError, match=r"labels has values in \[0, 2\], outside \[0, 2\)"):
        assign_labels(COUNTS[:3], torch.tensor([0, 1, 2]), 2)
    with pytest.raises(ValueError, match=r"rates has shape \(5, 3\), expected .* \[5, 2\]"):
        assign_labels(COUNTS, LABELS, 2, rates=torch.zeros(5, 3))
    with pytest.raises(ValueError, match="assignments has 4 entries but counts has 5 neurons"):
        all_activity(COUNTS, ASSIGNMENTS[:4], 2)
    with pytest.raises(ValueError, match=r"assignments has values in \[-1, 2\], outside \[-1, 2\)"):
        all_activity(COUNTS, torch.tensor([0, 1, 2, 0, -1]), 2)
    with pytest.raises(ValueError, match=r"proportions has shape \(5, 3\)"):
        proportion_weighting(COUNTS, ASSIGNMENTS, torch.zeros(5, 3), 2)
    with pytest.raises(ValueError, match=r"pred has values in \[0, 3\], outside \[0, 3\)"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="pred has 2 entries but labels has 1"):
        accuracy(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="zero samples"):
        accuracy(torch.tensor([]), torch.tensor([]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda():
    counts, labels = COUNTS.cuda(), LABELS.cuda()
    assignments, proportions, rates = assign_labels(counts, labels, 2)
    assert assignments.device.type == "cuda"
    assert all_activity(counts, assignments, 2).device.type == "cuda"
    assert proportion_weighting(counts, assignments, proportions, 2).tolist() == LABELS.tolist()
    assert confusion_matrix(all_activity(counts, assignments, 2), labels, 2).device.type == "cuda"
