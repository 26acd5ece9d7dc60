"""Read and write ``.seg.npz``: one labelmap and its segments in a NumPy archive.

The archive holds two arrays, written in this order:

``segio_labelmap_v1``
    The header, UTF-8 JSON as bytes: the grid (``ijk_to_lps``, a 4 x 4 matrix in LPS mm)
    and the segments (``id``, ``name``, ``color`` as three floats in 0..1,
    ``terminology`` in 3D Slicer's notation or null, ``label``, ``properties``). Its name
    comes first in the zip, which is what the sniffer looks for.
``labels``
    The label values, indexed ``[k, j, i]``, any integer type.

One label per voxel: segments that overlap cannot be stored, and the writer refuses them
rather than drop voxels. Nothing is pickled, so reading a hostile file runs no code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from segio.errors import ReadError, WriteError, reading
from segio.fileio.outputs import OutputFiles
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.terminology import Terminology
from segio_plugin_example.register import MARKER


def read(path: Path) -> Segmentation:
    """The segmentation in a ``.seg.npz`` file; a ``ReadError`` naming it if it is bad."""
    with reading(path, "segio .seg.npz"):
        # Our own handle: np.load leaves the file open when the archive is corrupt.
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
            header = json.loads(bytes(archive[MARKER]).decode("utf-8"))
            labels = archive["labels"]
        if labels.ndim != 3 or labels.dtype.kind not in "iu":
            raise ReadError(f"labels must be 3-D integers, not {labels.dtype}", path=path)
        geometry = Geometry(header["ijk_to_lps"], labels.shape)
        segments = [_segment(entry) for entry in header["segments"]]
        return Segmentation(segments, [Layer(labels, geometry)])


def _segment(entry: dict[str, Any]) -> Segment:
    term = entry["terminology"]
    red, green, blue = (float(c) for c in entry["color"])
    return Segment(
        id=str(entry["id"]),
        name=str(entry["name"]),
        color=(red, green, blue),
        terminology=Terminology.from_slicer(term) if term else None,
        layer=0,
        label_value=int(entry["label"]),
        properties={str(k): str(v) for k, v in entry["properties"].items()},
    )


def write(segmentation: Segmentation, path: Path, files: OutputFiles) -> None:
    """Write ``segmentation`` to ``path``; a ``WriteError`` for what one labelmap cannot hold."""
    if any(layer.is_fractional for layer in segmentation.layers):
        raise WriteError("a .seg.npz holds labels, not fractions", path=path)
    # Segments in several layers that do not overlap fit in one (a new object: the
    # caller's segmentation is never changed).
    flat = segmentation.pack_layers() if len(segmentation.layers) > 1 else segmentation
    if len(flat.layers) > 1:
        raise WriteError(
            "segments overlap; a .seg.npz holds one label per voxel",
            path=path,
            hint="write the overlapping segments to separate files (--segments)",
        )
    geometry = flat.require_geometry()
    labels = flat.layers[0].array if flat.layers else np.zeros(geometry.shape, dtype=np.uint8)
    header = {
        "ijk_to_lps": geometry.ijk_to_lps.tolist(),
        "segments": [
            {
                "id": s.id,
                "name": s.name,
                "color": list(s.color),
                "terminology": s.terminology.to_slicer() if s.terminology else None,
                "label": s.label_value,
                "properties": dict(s.properties),
            }
            for s in flat.segments.values()
        ],
    }
    # The header first: the sniffer looks for its name in the zip's first entry.
    arrays: dict[str, Any] = {
        MARKER: np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
        "labels": labels,
    }
    # A file object, not a name: numpy would add ".npz" to the staged file's name.
    with files.stage(path).open("wb") as handle:
        np.savez_compressed(handle, **arrays)
