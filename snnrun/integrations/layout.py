"""How neurons are laid out in the pictures of them (the end-of-run figures and the live images)."""

from __future__ import annotations

import math


def grid_shape(n: int) -> tuple[int, int]:
    """``(rows, cols)`` for ``n`` cells: ``cols = ceil(sqrt(n))`` and as many rows as needed
    (50 -> 7 x 8, not 8 x 8 with an empty row)."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols
