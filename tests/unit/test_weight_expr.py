"""Weight expressions in YAML (``weight: "0.05 + 0.1 * N(0, 1)"``), checked by hand."""

from __future__ import annotations

import pytest
import torch

from snnrun.build import build_network
from snnrun.config.validate import ConfigError
from snnrun.core.connections.base import parse_weight


def _w(expr: str, shape=(3, 3), seed=0) -> torch.Tensor:
    return parse_weight(expr).sample(shape, torch.Generator().manual_seed(seed))


def test_constants_and_structure():
    assert torch.equal(_w("0.025 * (eye - 1)"), 0.025 * (torch.eye(3) - 1))
    assert torch.equal(_w("i * 10 + j", (2, 3)), torch.tensor([[0.0, 1, 2], [10, 11, 12]]))
    assert torch.equal(_w("-n_pre / n_post", (2, 4)), torch.full((2, 4), -0.5))
    assert torch.equal(_w("clip(i - j, -1, 1)", (3, 3)), torch.tensor([[0.0, -1, -1], [1, 0, -1], [1, 1, 0]]))
    assert torch.equal(_w("2 ** 3 - abs(-1)", (1, 2)), torch.full((1, 2), 7.0))


def test_draws_come_from_the_seeded_generator_left_to_right():
    g = torch.Generator().manual_seed(5)
    want = 0.05 + 0.1 * torch.randn((4, 5), generator=g)
    assert torch.equal(_w("0.05 + 0.1 * N(0, 1)", (4, 5), seed=5), want)
    g = torch.Generator().manual_seed(5)
    n = torch.randn((4, 5), generator=g)
    u = torch.rand((4, 5), generator=g)
    assert torch.allclose(_w("N(0, 1) + U(2, 4)", (4, 5), seed=5), n + 2 + 2 * u)
    big = _w("0.05 + 0.1 * N(0, 1)", (400, 500))
    assert abs(float(big.mean()) - 0.05) < 0.002 and abs(float(big.std()) - 0.1) < 0.002


@pytest.mark.parametrize("expr, message", [
    ("0.1 * n(0, 1)", "unknown symbol 'n' in '0.1 * n(0, 1)' (did you mean 'N'?)"),
    ("ey - 1", "unknown symbol 'ey' in 'ey - 1' (did you mean 'eye'?)"),
    ("0.5 * U", "'U' in '0.5 * U' is a function: call it, e.g. U(0, 1)"),
    ("N(0)", "N(a, b) takes 2 arguments, got 1"),
    ("0.1 *", "is not an expression"),
    ("__import__('os')", "unknown symbol '__import__'"),
    ("w.sum()", "is not allowed in a weight expression"),
])
def test_mistakes_are_named(expr, message):
    from snnrun.core.registry import ParamError

    with pytest.raises(ParamError) as err:
        parse_weight(expr)
    assert message in str(err.value)


def test_eye_needs_a_square_dense_connection_and_the_error_names_it():
    cfg = {"populations": {"A": {"kind": "input", "n": 3}, "B": {"kind": "lif", "n": 4}},
           "connections": {"A_B": {"kind": "dense", "source": "A", "target": "B", "weight": "eye"}}}
    with pytest.raises(ConfigError, match=r"network.connections.A_B.weight: eye needs a connection of a population onto "
                                          r"one of the same size, got 3 x 4"):
        build_network(cfg)
