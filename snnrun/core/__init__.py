"""snnrun's simulation engine: plain torch (no Hydra, OmegaConf or MLflow imports)."""

from . import connections, encoders, learning, neurons  # noqa: F401  (registration)
from .connections import CONNECTIONS
from .encoders import ENCODERS
from .learning import RULES
from .network import Network
from .neurons import NEURONS
from .record import Recorder, SpikeCounter
from .registry import ParamError

__all__ = ["Network", "Recorder", "SpikeCounter", "NEURONS", "CONNECTIONS", "RULES", "ENCODERS", "ParamError"]
