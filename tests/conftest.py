"""Test-wide settings: data from ../shared/data (or $SNNRUN_DATA_DIR), caches in a temp
dir, nothing downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config):
    # absolute, so that subprocesses started in other folders find the data too
    os.environ["SNNRUN_DATA_DIR"] = os.path.abspath(os.environ.get("SNNRUN_DATA_DIR") or SHARED_DATA)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # one kernel cache for the whole session (the library compiles once, not per test)
    if "SNNRUN_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["SNNRUN_CACHE_DIR"] = tempfile.mkdtemp(prefix="snnrun-test-kernels-")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    # without a GPU the CUDA backend's kernels run in numba-cuda's simulator (read when
    # numba starts, so before anything imports it)
    if not torch.cuda.is_available():
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["SNNRUN_DATA_DIR"])
    if not (path / "MNIST" / "raw").exists():
        pytest.skip(f"MNIST not found under {path} (set SNNRUN_DATA_DIR)")
    return path


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
