"""segio's napari plugin (npe2): open any file segio reads, save Labels layers through any
segio writer.

``napari.yaml`` is the manifest, found through the ``napari.manifest`` entry point
(``pip install "segio[napari]"``). The reader and writer are in :mod:`.plugin`; the layer
conversion, usable without the plugin, in :mod:`.layers` (``to_napari`` / ``from_napari``).
World coordinates are LPS millimetres in napari's axis order ``(z, y, x)``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"to_napari": "layers", "from_napari": "layers", "world_affine": "layers"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load on first use: napari and pandas are imported only by the functions."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'segio.interop.napari' has no attribute {name!r}")
    return getattr(importlib.import_module(f"segio.interop.napari.{module}"), name)
