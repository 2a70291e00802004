"""Compile and cache the fused backend's numba code.

Every piece of generated code (a network's kernel, a neuron model's step, a rule's update)
and the generic library (``lib.py`` with the RNG of :mod:`snnrun.core.models.rng`) is
written to the kernel cache (``$SNNRUN_CACHE_DIR/kernels``, default ``~/.cache/snnrun``)
as a module named by the hash of its text and imported; numba caches the machine code next
to it.  Code that does not change is therefore compiled once per machine; sizes and
parameter values are arguments, not part of the text, so other sizes and parameters reuse
it.  Pieces are compiled for explicit signatures (:func:`signature`) and passed to the
kernel as first-class functions, so a kernel's compile time does not include theirs.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import os
import sys
import threading
from pathlib import Path
from typing import Any

from numba import types

from ..models import rng


def kernel_dir() -> Path:
    root = os.environ.get("SNNRUN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "snnrun")
    path = Path(root) / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


_LOADING = threading.RLock()  # one import at a time: threads (parallel streams) may build programs together


def load_source(source: str, prefix: str) -> Any:
    """Import ``source`` as a module named ``<prefix>_<hash>`` from the kernel cache."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:16]
    name = f"{prefix}_{digest}"
    with _LOADING:  # a module is in sys.modules before it has run: no other thread may see it half-made
        if name in sys.modules:
            return sys.modules[name]
        path = kernel_dir() / f"{name}.py"
        if not path.exists() or path.read_text() != source:
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(source)
            os.replace(tmp, path)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module


RNG_FUNCTIONS = ("mix", "step_key", "site_key", "draw")


def rng_source(jit: str = 'njit(inline="always")') -> str:
    """models.rng's constants and integer functions, compiled by ``jit`` (numba's CPU jit,
    inlined where called; the CUDA backend's device functions)."""
    parts = [f"{k} = {getattr(rng, k)!r}" for k in ("M32", "MULT", "GOLDEN")]
    parts += [inspect.getsource(getattr(rng, f)) for f in RNG_FUNCTIONS]
    parts += [f"{f} = {jit}({f})" for f in RNG_FUNCTIONS]
    return "\n".join(parts) + "\n"


LIBRARY_FILES = ("lib.py", "lib_updates.py", "lib_prepass.py")
SHARED = (("snnrun.core.connections.rescale", "rescale"),)  # engine functions the library compiles from their source


def shared_source() -> str:
    """The engine's functions that the kernel runs as they are (:data:`SHARED`), jitted."""
    parts = []
    for module, name in SHARED:
        fn = getattr(importlib.import_module(module), name)
        parts += [inspect.getsource(fn), f'{name} = njit(inline="always")({name})']
    return "\n".join(parts) + "\n"


def library() -> Any:
    """The compiled generic library (see :func:`_library`), built once even when threads ask together."""
    with _LOADING:
        return _library()


@functools.lru_cache(maxsize=None)
def _library() -> Any:
    """The compiled generic library (``lib.py``, ``lib_updates.py`` and the RNG), one
    module named by the hash of its text."""
    parts = []
    for name in LIBRARY_FILES:
        text = Path(__file__).with_name(name).read_text()
        parts.append(text.split('"""', 2)[2] if text.startswith('"""') else text)  # without the docstring
    imports = "import numpy as np\nfrom numba import njit, prange\n\nfrom snnrun.core.fused.fnptr import call, view\n"
    body = "\n".join(p.replace("import numpy as np\n", "").replace("from numba import njit, prange\n", "")
                     .replace("from numba import njit\n", "")
                     .replace("from snnrun.core.fused.fnptr import call, view\n", "")
                     .replace("from snnrun.core.fused.fnptr import view\n", "") for p in parts)
    return load_source(imports + "\n" + rng_source() + shared_source() + body, "snnrun_lib")


RUN_SIGNATURE = (types.int64, types.boolean, types.int64, types.int64, types.int64, types.Array(types.int64, 1, "C"),
                 types.Array(types.int64, 1, "C"), types.Array(types.int64, 2, "C"), types.Array(types.int64, 1, "C"),
                 types.Array(types.int64, 2, "C"), types.int64, types.int64, types.int64)


def precompile() -> None:
    """Compile the whole library now (normally each function compiles at its first use;
    once per installation, then it loads from the disk cache)."""
    from numba.core.registry import CPUDispatcher

    from .fnptr import ABI

    lib = library()
    for obj in vars(lib).values():
        if isinstance(obj, CPUDispatcher) and obj.targetoptions.get("no_cpython_wrapper"):
            obj.compile(ABI)
    lib.run.compile(RUN_SIGNATURE)
