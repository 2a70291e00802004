"""Shared fixtures for the unit tests (hand-derived expectations live in each test)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global RNG state (no test depends on another's draws)."""
    torch.manual_seed(0)
    yield
