"""The napari reader and writer commands the manifest (``napari.yaml``) names.

The reader claims a path only when a segio format recognises it (name and content), so
napari's other readers still get the files segio does not read. The writer saves the
selected Labels layers through the segio writer the file name picks (``.seg.nrrd``,
``.nii.gz``, ``.dcm`` with a reference, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from segio.errors import SegioError
from segio.interop.napari.layers import LayerData, from_napari, to_napari

__all__ = ["get_reader", "read", "write_labels"]


def get_reader(path: str | Sequence[str]) -> Callable[[Any], list[LayerData]] | None:
    """``read`` when segio recognises every path, else None (napari tries other readers)."""
    from segio.registry import default_registry

    paths = [path] if isinstance(path, str) else list(path)
    registry = default_registry()
    try:
        for item in paths:
            registry.reader_for(item)
    except SegioError:
        return None
    return read


def read(path: str | Sequence[str]) -> list[LayerData]:
    """Every path as napari layer data, named after the file."""
    import segio

    paths = [path] if isinstance(path, str) else list(path)
    layers: list[LayerData] = []
    for item in paths:
        segmentation = segio.read(item)
        layers.extend(to_napari(segmentation, name=_stem(item)))
    return layers


def write_labels(path: str, layer_data: list[LayerData]) -> list[str]:
    """The Labels layers as one segmentation (one segio layer each) at ``path``."""
    import segio

    segio.write(from_napari(layer_data), path)
    return [path]


def _stem(path: str) -> str:
    """The file name without its format suffixes (``ct.seg.nrrd`` -> ``ct``)."""
    name = Path(path).name
    for suffix in (".seg.nrrd", ".nii.gz", ".seg.vtm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or name
