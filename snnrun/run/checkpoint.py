"""Checkpoints: written atomically (temporary file, fsync, rename), so a crash or a full
disk while saving leaves the previous checkpoint intact."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch


class CheckpointError(ValueError):
    """A checkpoint cannot be read or written; the message names the file."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CheckpointError(f"could not write checkpoint {str(path)!r}: {exc.strerror or exc}") from None
    except RuntimeError as exc:  # torch's writer reports a full disk as "[enforce fail at inline_container.cc...]"
        Path(tmp).unlink(missing_ok=True)
        free = _free_bytes(path.parent)
        raise CheckpointError(f"could not write checkpoint {str(path)!r} (disk full? {free / 2**20:.0f} MiB free; "
                              f"the previous checkpoint is intact): {str(exc).splitlines()[0][:120]}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _free_bytes(folder: Path) -> int:
    try:
        return int(os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize)
    except (OSError, AttributeError):  # pragma: no cover
        return -1


def resolve_resume(resume: str, uri: str) -> Path:
    """``resume=`` is a run directory, a checkpoint file, or an MLflow run id (whose
    ``output_dir`` tag names the directory of its checkpoints)."""
    path = Path(resume)
    if path.exists() or not (len(resume) == 32 and all(c in "0123456789abcdef" for c in resume)):
        return path
    from ..integrations.tracking import run_tags_of

    try:
        out = run_tags_of(resume, uri).get("output_dir")
    except LookupError as exc:
        raise CheckpointError(f"resume: {exc}") from None
    if not out:
        raise CheckpointError(f"resume: MLflow run {resume!r} has no output_dir tag (not an snnrun run?)")
    return Path(out)


def resume_checkpoint(cfg: Any) -> Optional[dict[str, Any]]:
    """The checkpoint ``cfg.resume`` names (run folder, checkpoint file or MLflow run id), or
    None when not resuming.  A finished run is refused, naming its result."""
    if not cfg.resume:
        return None
    path = resolve_resume(str(cfg.resume), cfg.tracking.uri)
    ckpt = load_checkpoint(path)
    ckpt["_path"] = path / "checkpoint.pt" if path.is_dir() else path
    done = ckpt.get("finished")
    if done:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in list(done.items())[:3])
        raise CheckpointError(f"resume: {str(ckpt['_path'])!r} is of a run that already finished ({shown}); "
                              "start a new run instead")
    return ckpt


def resume_dir(cfg: Any, ckpt: Optional[dict[str, Any]]) -> Optional[Path]:
    """The folder a resumed run keeps writing to: its own (one run, one folder)."""
    if ckpt is None:
        return None
    folder = Path(ckpt["_path"]).resolve().parent
    from .console import say

    say(f"snnrun: resuming {folder} (checkpoints stay in that folder)")
    return folder


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt or truncated file
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or unreadable ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or "network" not in payload:
        raise CheckpointError(f"checkpoint {str(path)!r} is not an snnrun checkpoint")
    return payload
