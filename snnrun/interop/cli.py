"""``snnrun export nir SOURCE -o OUT.nir``: a finished (or checkpointed) run's network as a
NIR graph (:mod:`snnrun.interop.nir_io`).

SOURCE is a run folder (the one the run's banner names; it holds ``checkpoint.pt``), a
checkpoint file, or an MLflow run id (its folder is the run's ``output_dir`` tag in the store
``--tracking-uri``, by default the one runs write to: ``sqlite:///outputs/mlflow.db``).  The network is rebuilt from the run's own config and loaded with the
checkpoint's weights.  Problems end with one ``snnrun: error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="snnrun export", description="Export a run's network to another format.")
    sub = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    n = sub.add_parser("nir", help="the Neuromorphic Intermediate Representation (.nir, HDF5)")
    n.add_argument("source", help="a run folder (holding checkpoint.pt), a checkpoint file or an MLflow run id")
    n.add_argument("--tracking-uri", default="sqlite:///outputs/mlflow.db", help="where to look up a run id")
    n.add_argument("-o", "--output", required=True, help="the .nir file to write")
    n.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    return p


def resolve_source(source: str, tracking_uri: str) -> Path:
    """A run folder or checkpoint file as given, or the folder of an MLflow run id."""
    import re

    from .nir_io import NIRError

    path = Path(source)
    if path.exists() or not re.fullmatch(r"[0-9a-f]{32}", source):
        return path
    from ..integrations.tracking import run_tags_of

    try:
        tags = run_tags_of(source, tracking_uri)
    except LookupError as exc:
        raise NIRError(f"run {source}: {exc}") from None
    if "output_dir" not in tags:
        raise NIRError(f"run {source} in {tracking_uri} has no output_dir tag (not an snnrun run?)")
    return Path(tags["output_dir"])


def network_of_checkpoint(source: str | Path):
    """Rebuild the network of a run folder or checkpoint file, with its trained weights."""
    from ..build import build_network
    from ..run.checkpoint import CheckpointError, load_checkpoint
    from ..run.lifecycle import task_class
    from .nir_io import NIRError

    path = Path(source)
    if path.is_dir():
        path = path / "checkpoint.pt"
        if not path.is_file():
            raise NIRError(f"{str(source)!r}: no checkpoint.pt in this folder (give a run folder or a checkpoint file)")
    if not path.is_file():
        raise NIRError(f"{str(source)!r}: no such run folder or checkpoint file")
    ckpt = load_checkpoint(path)
    cfg = ckpt.get("config") or {}
    kind = ckpt.get("task") or cfg.get("train", {}).get("kind")
    if kind and not getattr(task_class(kind), "config_network", True):
        raise NIRError(f"{str(path)!r}: a {kind!r} run builds its network in code, not from network: in its config; "
                       "export supports networks described by the config")
    if "network" not in cfg or "network" not in ckpt:
        raise CheckpointError(f"checkpoint {str(path)!r} holds no network config or weights")
    net = build_network(cfg["network"], dt_ms=float(cfg.get("dt_ms", 1.0)), seed=0)
    try:
        net.load_state_dict(ckpt["network"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit its own network config: {exc}") from None
    return net


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .nir_io import write_nir

    args = _parser().parse_args(argv)
    out = Path(args.output)
    if out.exists() and not args.force:
        raise FileExistsError(f"{str(out)!r} exists; choose another -o or pass --force")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{str(out.parent)!r}: no such folder for the output")
    net = network_of_checkpoint(resolve_source(args.source, args.tracking_uri))
    notes = write_nir(net, out)
    for note in notes:
        print(f"note: {note}")
    pops = ", ".join(f"{n} ({p.kind}, {p.n})" for n, p in net.populations.items())
    print(f"wrote {out}: populations {pops}; {len(net.connections)} connections; dt {net.dt:g} ms")
    return 0


def entry(argv: Sequence[str]) -> None:
    """``snnrun export ...`` with snnrun's error convention (one line, exit status 2)."""
    import os

    from ..config.validate import ConfigError
    from ..run.checkpoint import CheckpointError
    from .nir_io import NIRError

    try:
        sys.exit(main(argv))
    except (NIRError, ConfigError, CheckpointError, FileExistsError, FileNotFoundError, OSError) as exc:
        if os.environ.get("SNNRUN_DEBUG"):
            raise
        print(f"snnrun: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
