"""The scale of weight normalisation, one source for numpy and the fused kernel.

``w *= f`` with ``f = (1 / s) * norm`` per target neuron (``s`` its incoming weight sum; 1
where ``s == 0``, so a neuron without input weights keeps them), in float32 throughout: the
reciprocal, then the product, as torch computes ``norm / s``.  ``Connection.normalize`` calls
it on numpy views of CPU weights; the fused kernel's library compiles this very source
(``fused/loader.py``) for ``lib_updates.normalize_dense``.
"""

import numpy as np


def rescale(w, s, norm):
    """``w *= (1 / s) * norm`` in place (``s``: float32, broadcastable against ``w``, left as
    it is; ``norm``: a float32)."""
    f = np.where(s == 0, np.float32(1.0), s)
    np.reciprocal(f, f)
    np.multiply(f, norm, f)
    np.multiply(w, f, w)
