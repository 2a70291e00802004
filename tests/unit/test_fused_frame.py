"""The fused kernel's per-call values: Bernoulli thresholds are computed once per tensor
(kept for a presentation and its rest), anew when the tensor changes in place; the quick
NaN check finds NaN/inf voltages and only those."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnrun.core import Network
from snnrun.core.fused.codegen import ThresholdCache, thresholds


def test_thresholds_are_floor_p_times_2_to_32_and_cached_per_tensor():
    cache = ThresholdCache()
    rest = torch.zeros(1, 4)
    shown = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    a = cache(shown, 1)
    assert a.tolist() == [[0, 2**30, 2**31, 2**32]]
    assert cache(rest, 1) is cache(rest, 1)            # the rest's zeros: computed once
    assert cache(shown, 1) is a                         # both kept
    shown[0, 0] = 0.5                                   # changed in place: computed anew
    assert cache(shown, 1).tolist() == [[2**31, 2**30, 2**31, 2**32]]
    other = shown.clone()
    assert cache(other, 1) is not cache(shown, 1)
    with pytest.raises(ValueError, match="NaN or inf"):
        thresholds(torch.tensor([[float("nan")]]), 1)
    assert np.array_equal(cache(rest, 1), np.zeros((1, 4), np.int64))


def test_the_rest_stays_cached_while_the_images_change():
    """Image, rest, image, rest, ...: each image is new, the rest's zeros are computed once
    (a hit makes its entry the most recent, so the next image evicts the older image)."""
    cache = ThresholdCache()
    rest = torch.zeros(1, 4)
    kept = cache(rest, 1)
    for k in range(4):
        assert cache(torch.full((1, 4), 0.125 * (k + 1)), 1)[0, 0] == (k + 1) * 2**29
        assert cache(rest, 1) is kept


def test_quick_nonfinite_names_the_population_and_accepts_huge_finite_voltages():
    net = Network()
    net.add_population("X", "input", n=3)
    net.add_population("E", "lif", n=4)
    net.add_population("F", "lif", n=4)
    net.add_connection("XE", "X", "E", "dense", weight=1.0)
    net.allocate(2)
    assert net.nonfinite(quick=True) is None
    net.populations["F"].v.fill_(3.0e38)                # finite, though its float32 sum is not
    assert net.nonfinite(quick=True) is None
    net.populations["F"].v[1, 2] = float("nan")
    assert net.nonfinite(quick=True) == "population 'F' (v)"
    net.populations["F"].v[1, 2] = float("-inf")
    assert net.nonfinite(quick=True) == "population 'F' (v)"
