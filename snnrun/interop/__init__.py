"""Interoperability with other tools: NIR export (:mod:`.nir_io`) and import (:mod:`.nir_load`)."""

from .nir_io import NIRError, to_nir, write_nir
from .nir_load import from_nir

__all__ = ["NIRError", "from_nir", "to_nir", "write_nir"]
