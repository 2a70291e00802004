"""snnrun: a declarative experiment runner for spiking neural networks on PyTorch."""

__version__ = "0.1.0"

from .core import Network, Recorder, SpikeCounter  # noqa: E402

__all__ = ["Network", "Recorder", "SpikeCounter", "__version__"]
