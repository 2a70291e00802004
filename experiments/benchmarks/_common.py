"""Shared helpers for the snnrun-vs-BindsNET benchmark scripts (timing, threads, tables, JSON)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
INSTALL_HINT = "pip install -e '.[bench]'   (from the repository root, inside the venv)"


def set_threads(threads: int) -> None:
    """Pin torch's intra-op threads, numba's threads and snnrun's fused-kernel threads.

    Call before the first snnrun simulator is made (the fused backend reads SNNRUN_THREADS).
    """
    os.environ["SNNRUN_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a dependency of snnrun
        pass


def torch_threads(n: int) -> None:
    """Set torch's intra-op threads (cheap when unchanged; call outside timed regions)."""
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def import_bindsnet(skip: bool) -> Optional[Any]:
    """``import bindsnet`` or exit with an install hint; ``None`` when skipped."""
    if skip:
        return None
    try:
        import bindsnet  # noqa: F401  (imports every subpackage: slow-ish, ~seconds)
    except ImportError as exc:
        sys.exit(f"error: BindsNET is not importable ({exc}).\n"
                 f"  Install it with: {INSTALL_HINT}\n"
                 f"  or run with --skip-bindsnet to time snnrun alone.")
    return bindsnet


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def parse_ints(text: str) -> list[int]:
    """'1000,4000 10000' -> [1000, 4000, 10000]."""
    return [int(t) for t in text.replace(",", " ").split()]


def environment(threads: int) -> dict[str, Any]:
    import torch

    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": threads,
        "load_avg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git_commit": _git_commit(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for mod in ("numba", "numpy", "bindsnet"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:
            env[mod] = None
    try:
        from importlib.metadata import version

        env["bindsnet"] = env["bindsnet"] or version("bindsnet")
    except Exception:
        pass
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _git_commit() -> Optional[str]:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else None
    except Exception:
        return None


def print_env(env: dict[str, Any]) -> None:
    load = env.get("load_avg_start")
    print(f"# {env['time']}  {env['cpu']} ({env['cpu_count']} cores), threads={env['threads']}, "
          f"load avg {'/'.join(f'{x:.2f}' for x in load) if load else '?'}")
    print(f"# python {env['python']}, torch {env['torch']}, numba {env['numba']}, numpy {env['numpy']}, "
          f"bindsnet {env.get('bindsnet') or '-'}, snnrun commit {env.get('git_commit') or '?'}")
    if load and env.get("cpu_count") and load[0] > 0.5 * env["cpu_count"]:
        print(f"# WARNING: the machine is busy (load {load[0]:.2f} on {env['cpu_count']} cores): "
              f"timings will be noisy and slower than on a quiet machine")


def fmt(x: Optional[float], digits: int = 3) -> str:
    if x is None or x != x:  # None or NaN
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{digits - 1}f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[c if isinstance(c, str) else fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths))  # noqa: E731
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))


def write_json(path: Optional[str], payload: dict[str, Any]) -> None:
    if not path:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(_clean(payload), indent=2, default=_jsonable) + "\n")
    print(f"# results written to {p}")


def _clean(x: Any) -> Any:
    """NaN -> null (strict JSON), recursively."""
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _jsonable(x: Any) -> Any:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.tolist()
    except ImportError:
        pass
    if isinstance(x, float) and x != x:
        return None
    return str(x)


def start(args: Any) -> tuple[bool, dict[str, Any]]:
    """Common start of a benchmark: threads, BindsNET import, environment printout."""
    set_threads(args.threads)
    have_bindsnet = import_bindsnet(args.skip_bindsnet) is not None
    env = environment(args.threads)
    env["numba_torch_threads"] = args.numba_torch_threads
    print_env(env)
    print(f"# threads: torch {args.threads} for BindsNET and snnrun torch; numba kernel {args.threads}; "
          f"torch {args.numba_torch_threads} while snnrun numba runs")
    return have_bindsnet, env
