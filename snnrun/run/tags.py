"""What every run records besides its config: MLflow tags (code version, machine, command,
output folder) and the config as YAML."""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Optional

import torch

from ..integrations import tracking


def run_tags(device: torch.device, backend: str, out_dir: Path, extra: Optional[dict] = None) -> dict:
    """Tags of every MLflow run: code version, machine, command, output folder."""
    return {"git_commit": tracking.git_commit(), "torch_version": torch.__version__, "device": str(device),
            "backend": backend, "snnrun_version": snnrun_version(), "python": platform.python_version(),
            "command": " ".join(sys.argv), "output_dir": str(out_dir.resolve()), **(extra or {})}


def snnrun_version() -> str:
    from .. import __version__

    return __version__


def config_yaml(raw: dict) -> str:
    try:
        from omegaconf import OmegaConf

        return OmegaConf.to_yaml(OmegaConf.create(raw))
    except Exception:  # pragma: no cover
        return repr(raw)
