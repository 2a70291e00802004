"""Connection kinds; importing this package registers them all in ``CONNECTIONS``."""

from . import dense  # noqa: F401  (registration)
from .base import CONNECTIONS, Connection, ConnectionParams, WeightInit
from .dense import Dense, DenseParams, OneToOne, OneToOneParams

__all__ = ["CONNECTIONS", "Connection", "ConnectionParams", "WeightInit", "Dense", "DenseParams", "OneToOne", "OneToOneParams"]
