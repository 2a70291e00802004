"""A program's frame: the tables ``lib.run`` and the pieces read.

``P`` holds each array's data address, ``S`` its shape (padded to 4 dimensions), ``I`` the
integers; ``F`` the called functions' addresses and ``A`` each call's slots.  The frame
keeps the arrays alive.  Arrays are refreshed as their slot says: state views when the
network re-allocates, scratch when its shape changes, per-call values every call; each is
checked against the kind its functions expect (dtype, dimensions, C order) before its
address is handed over.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .codegen import NP_KINDS, Ctx, Program
from .fnptr import addresses

PHASES = ("setup", "prop", "step", "learn", "after")


class Frame:
    def __init__(self, prog: Program):
        self.prog = prog
        self.arrays = [s for s in prog.slots.values() if s.kind != "int"]
        self.ints = [s for s in prog.slots.values() if s.kind == "int"]
        self.index = {s.name: k for k, s in enumerate(self.arrays)}
        self.index.update({s.name: k for k, s in enumerate(self.ints)})
        self.P = np.zeros(len(self.arrays), np.int64)
        self.S = np.ones((len(self.arrays), 4), np.int64)
        self.I = np.zeros(max(len(self.ints), 1), np.int64)
        self.keep: list[Any] = [None] * len(self.arrays)
        self.generation = None
        self.tables: dict[tuple, tuple] = {}
        self._per_call = [(k, s) for k, s in enumerate(self.arrays) if s.when == "call"]
        self._scratch = [(k, s) for k, s in enumerate(self.arrays) if s.when == "scratch"]
        self._scratch_ks = np.array([k for k, _ in self._scratch], np.int64)
        self._state = [(k, s) for k, s in enumerate(self.arrays) if s.when in ("state", "fixed")]
        for k, s in enumerate(self.ints):
            if s.when == "fixed":
                self.I[k] = int(s.get(None))
        self._int_calls = [(k, s) for k, s in enumerate(self.ints) if s.when == "call"]
        self._scratch_key: tuple = ()
        self._scratch_sets: dict[tuple, tuple] = {}  # key -> (P, S, arrays) of the scratch, the last two keys

    def _set(self, k: int, arr: np.ndarray) -> None:
        slot = self.arrays[k]
        name, nd = slot.kind.rsplit("_", 1)
        want = NP_KINDS[name]
        if arr.dtype != want or arr.ndim != int(nd) or not arr.flags.c_contiguous:
            raise TypeError(f"fused kernel: {slot.name} is {arr.dtype}[{arr.ndim}d], needs C-ordered {np.dtype(want)}[{nd}d]")
        self.keep[k] = arr
        self.P[k] = arr.ctypes.data
        self.S[k, :] = 1
        self.S[k, :arr.ndim] = arr.shape

    def fill(self, x: Ctx, generation: int) -> None:
        """Refresh what a call needs (see the module docstring)."""
        if generation != self.generation:
            for k, s in self._state:
                self._set(k, s.get() if s.when == "state" else s.get(x))
            self.generation = generation
        key = (x.batch, x.T, x.learn, generation)
        if key != self._scratch_key:  # work arrays: shapes depend on the batch, the steps, learning
            self._use_scratch(key, x)
        for k, s in self._per_call:
            if x.learn or not s.name.startswith("r"):  # rules' values only while learning
                arr = s.get(x)
                if arr is not self.keep[k]:  # (an array object keeps its address and shape)
                    self._set(k, arr)
        for k, s in self._int_calls:
            if x.learn or not s.name.startswith("r"):
                self.I[k] = int(s.get(x))

    def _use_scratch(self, key: tuple, x: Ctx) -> None:
        """The scratch arrays for ``key`` (batch, steps, learning, generation): the last two
        sets are kept (a pass's full batches and its last, smaller one alternate; learning and
        learning-off passes), arrays of an unchanged shape shared between them."""
        ks = self._scratch_ks
        kept = self._scratch_sets.get(key)
        if kept is None:
            for k, s in self._scratch:
                shape = tuple(s.get(x))
                if self.keep[k] is None or self.keep[k].shape != shape:
                    self._set(k, np.zeros(shape, NP_KINDS[s.kind.split("_")[0]]))
            kept = (self.P[ks].copy(), self.S[ks].copy(), [self.keep[k] for k in ks])
            while len(self._scratch_sets) >= 2:
                self._scratch_sets.pop(next(iter(self._scratch_sets)))
            self._scratch_sets[key] = kept
        else:
            self.P[ks], self.S[ks] = kept[0], kept[1]
            for k, arr in zip(self._scratch_ks.tolist(), kept[2]):
                self.keep[k] = arr
        self._scratch_key = key

    def table(self, ahead: tuple) -> tuple:
        """(F, A, n_setup, n_step, n_learn) for the connections propagated ahead (``ahead``: their
        indices where the ahead-of-time pass runs this call)."""
        t = self.tables.get(ahead)
        if t is None:
            calls = [c for phase in PHASES for c in self.prog.calls if c.phase == phase and
                     (c.ahead is None or (c.ahead[0] in ahead) == c.ahead[1])]
            F = addresses([c.dispatcher for c in calls])
            A = np.zeros((len(calls), max([len(c.args) for c in calls] + [1])), np.int64)
            for n, c in enumerate(calls):
                A[n, :len(c.args)] = [self.index[a] for a in c.args]
            t = self.tables[ahead] = (F, A, sum(c.phase == "setup" for c in calls),
                                      sum(c.phase in ("prop", "step") for c in calls),
                                      sum(c.phase == "learn" for c in calls))
        return t
