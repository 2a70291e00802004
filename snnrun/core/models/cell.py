"""One neuron of one sample for one step, as scalar source: what every generated backend
(the fused CPU kernel, the CUDA kernel) prints from a compiled neuron model.

The cell reads the step's input (``I_`` from the excitatory buffer ``ie[b, j]``, which it
clears, ``I_inh`` from ``ii``, external input ``ext[t, b, j]`` split by sign for
conductance models; input populations read ``xin[t, b, j]``), loads the state (fast
``st_<v>[b, j]`` into ``<v>``, slow ``sl_<v>[j]`` into ``<v>_``), runs ``update``, the
refractory counter (``rc = max(ref - dt, 0)``, ``active = ref < dt / 2``), the threshold
into ``s_``, ``reset`` where it holds (the counter set to the refractory period), and
stores the state.  Increments of slow variables are printed by the caller's ``inc``
(the backends apply them after the batch's step, and only while learning).

With ``lifted`` (:mod:`.lift`) the cell is printed for loop A (``mode="args"``: no stores,
the lifted calls' arguments recorded) or loop C (``mode="use"``: their values read back).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from .ir import Assign, block_reads
from .lift import ARG, VALUE, Lifted


class Consts:
    """Run-time constants of a piece: each occurrence gets a slot ``k<n>`` (never merged by
    value, so the text depends on structure only)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def __call__(self, value: float) -> str:
        self.values.append(float(value))
        return f"k{len(self.values) - 1}"

    def unpack(self, array: str = "c") -> list[str]:
        return [f"k{i} = {array}[{i}]" for i in range(len(self.values))]


def indent(lines: list[str], n: int) -> list[str]:
    return [" " * n + line for line in lines]


def neuron_cell(c: Any, p: Any, k: Consts, *, ext: bool, inc: Callable[[str, str, str], str],
                lifted: Optional[Lifted] = None, mode: str = "cell") -> list[str]:
    """Lines of the cell of compiled neuron ``c`` (printer ``p``, constants ``k``;
    ``ext``: the population has external input; ``inc(name, "+=" | "-=", value)``: the
    line incrementing slow variable ``name``; ``lifted``/``mode``: see the module docstring)."""
    stores = mode != "args"

    def hook(s: Assign, value: str) -> Any:
        if s.target.startswith(ARG):
            m = s.target[len(ARG):]
            return [f"_lh{m}[b, j] = {value}", f"_lf{m}[b, j] = True"] if mode == "args" else [f"{VALUE}{m} = _lh{m}[b, j]"]
        if s.target in c.slow_incremented:
            return [inc(s.target, s.op, value) if stores else "pass"]
        return None

    update, reset = (lifted.update, lifted.reset) if lifted else (c.update, c.reset)
    if mode == "args":  # loop A: what the arguments depend on
        update = lifted.args
    cell: list[str] = []
    if mode == "args":
        for m in range(len(lifted.fns)):
            cell += [f"_lf{m}[b, j] = False"] + ([f"{VALUE}{m} = np.float32(0.0)"] if lifted.reset_calls else [])
    if c.input:
        cell.append("I_ = np.float32(xin[t, b, j])")
    else:
        cell += ["I_ = ie[b, j]"] + (["ie[b, j] = np.float32(0.0)"] if stores else [])
        if c.uses_inh:
            cell += ["I_inh = ii[b, j]"] + (["ii[b, j] = np.float32(0.0)"] if stores else [])
        if ext:  # negative external input opens the inhibitory conductance (as Network.run)
            cell += ["xv = ext[t, b, j]"] + (
                ["if xv >= 0:", "    I_ = I_ + xv", "else:", "    I_inh = I_inh - xv"] if c.uses_inh else ["I_ = I_ + xv"])
    reads = None if stores or lifted.reset_calls else block_reads(update)  # loop A loads what it reads
    cell += [f"{n} = st_{n}[b, j]" for n, _ in c.fast if reads is None or n in reads]
    cell += [f"{n}_ = sl_{n}[j]" for n, _ in c.slow if reads is None or n in reads]
    if c.refrac > 0:
        cell.append(f"active = ref[b, j] < {k(c.refrac_tol)}")
    cell += p.block(update, hook)
    if not stores:  # loop A: the threshold and reset only for the calls the reset has
        return cell + ([f"s_ = {p.expr(c.threshold)}", "if s_:"] + indent(p.block(reset, hook), 4) if lifted.reset_calls else [])
    if c.refrac > 0:
        cell += [f"rc = ref[b, j] - {k(c.dt)}", "if rc < 0:", "    rc = np.float32(0.0)"]
    cell.append(f"s_ = {p.expr(c.threshold)}")
    lines = p.block(reset, hook) + ([f"rc = {k(c.refrac)}"] if c.refrac > 0 else [])
    if lines:
        cell += ["if s_:"] + indent(lines, 4)
    if c.refrac > 0:
        cell.append("ref[b, j] = rc")
    cell += [f"st_{n}[b, j] = {n}" for n, _ in c.fast]
    return cell


__all__ = ["Consts", "indent", "neuron_cell"]
