"""A network too large for the machine is refused before anything is allocated, naming the
connection and the memory it needs (``n_neurons=10000000`` used to die in the allocator)."""

from __future__ import annotations

import pytest

from snnrun import build
from snnrun.build import build_network
from snnrun.config.validate import ConfigError


def _net(n: int, mask: bool = False) -> dict:
    rec = {"kind": "dense", "source": "A", "target": "A", "weight": 0.1}
    if mask:
        rec["mask"] = "all_but_self"
    return {"populations": {"X": {"kind": "input", "n": 784}, "A": {"kind": "lif", "n": n}},
            "connections": {"X_A": {"kind": "dense", "source": "X", "target": "A"}, "A_A": rec}}


def test_too_large_is_refused_naming_the_largest_connection():
    with pytest.raises(ConfigError) as err:
        build_network(_net(10_000_000, mask=True))
    msg = str(err.value)
    # 10^7 x 10^7 x (4 bytes of weight + 8 of mask) = 1.2e15 bytes = 1091.4 TiB
    assert msg.startswith("network.connections.A_A: 10000000 x 10000000 synapses need 1091.4 TiB"), msg
    assert "more than this machine's" in msg and "use fewer neurons" in msg


def test_the_limit_is_this_machines_memory(monkeypatch):
    # 784 x 1000 + 1000 x 1000 float32 = 7,136,000 bytes: fits 8 MB, not 7 MB
    monkeypatch.setattr(build, "physical_memory", lambda: 8_000_000)
    assert build_network(_net(1000)).connections["A_A"].w.shape == (1000, 1000)
    monkeypatch.setattr(build, "physical_memory", lambda: 7_000_000)
    with pytest.raises(ConfigError, match=r"network.connections.A_A: 1000 x 1000 synapses need 3.8 MiB"):
        build_network(_net(1000))


def test_an_allocation_failure_names_the_connection(monkeypatch):
    from snnrun.core.connections.dense import Dense

    def fail(self, init, generator):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(Dense, "init_weights", fail)
    with pytest.raises(ConfigError, match=r"network.connections.X_A: out of memory building its 784 x 10 synapses"):
        build_network(_net(10))
