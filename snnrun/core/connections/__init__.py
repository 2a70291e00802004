"""Connection kinds; importing this package registers them all in ``CONNECTIONS``."""

from . import conv, dense, local, sparse  # noqa: F401  (registration)
from .base import CONNECTIONS, Connection, ConnectionParams, WeightInit
from .conv import Conv2d, Conv2dParams
from .dense import Dense, DenseParams, OneToOne, OneToOneParams
from .local import Local, LocalParams
from .sparse import Sparse, SparseParams

__all__ = [
    "CONNECTIONS", "Connection", "ConnectionParams", "WeightInit", "Dense", "DenseParams", "OneToOne",
    "OneToOneParams", "Conv2d", "Conv2dParams", "Local", "LocalParams", "Sparse", "SparseParams",
]
