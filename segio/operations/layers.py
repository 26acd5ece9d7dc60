"""What every editing operation shares: new label arrays in one vectorised pass, a new
segmentation that shares nothing mutable with its input, and voxels for the edits that
need them.

Operations return new objects: the caller's segmentation is never changed, so an edit
that fails halfway leaves nothing half-done, and ``segio batch`` can apply one plan to
many inputs.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.labels.values import voxel_slabs
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation

#: Unsigned types up to this many bytes are remapped through a table indexed by value.
_TABLE_BYTES = 2


def remap(
    array: NDArray[np.integer], mapping: Mapping[int, int], *, clear_others: bool
) -> NDArray[np.integer]:
    """A new array where each value ``v`` in ``mapping`` becomes ``mapping[v]``; other
    values stay (``clear_others`` False) or become 0.

    The result's type holds every new value (widened from ``array``'s when needed).
    Small unsigned types go through one lookup table (``table[array]``); others through
    a sorted search, slab by slab, so memory stays bounded for any value.
    """
    top = max(mapping.values(), default=0)
    dtype = np.promote_types(array.dtype, np.min_scalar_type(top))
    if array.dtype.kind == "u" and array.dtype.itemsize <= _TABLE_BYTES:
        size = int(np.iinfo(array.dtype).max) + 1
        table = np.zeros(size, dtype) if clear_others else np.arange(size, dtype=dtype)
        for old, new in mapping.items():
            if 0 <= old < size:
                table[old] = new
        result: NDArray[np.integer] = table[array]
        return result
    info = np.iinfo(array.dtype)
    present = sorted(k for k in mapping if info.min <= k <= info.max)  # others cannot occur
    keys = np.array(present, dtype=array.dtype)
    values = np.array([mapping[k] for k in present], dtype=dtype)
    out = np.empty(array.shape, dtype=dtype)
    flat = out.reshape(-1)
    start = 0
    for chunk in voxel_slabs(array):
        if len(keys):
            at = np.minimum(np.searchsorted(keys, chunk), len(keys) - 1)
            hit = keys[at] == chunk
            rest = np.zeros_like(chunk, dtype=dtype) if clear_others else chunk.astype(dtype)
            flat[start : start + chunk.size] = np.where(hit, values[at], rest)
        else:
            flat[start : start + chunk.size] = 0 if clear_others else chunk
        start += chunk.size
    return out


def copied_segment(segment: Segment, **changes: Any) -> Segment:
    """A copy of ``segment`` (its properties too) with ``changes``."""
    changes.setdefault("properties", dict(segment.properties))
    return dataclasses.replace(segment, **changes)


def rebuilt(
    segmentation: Segmentation,
    segments: Iterable[Segment],
    layers: Iterable[Layer],
    **changes: Any,
) -> Segmentation:
    """A new segmentation with ``segments`` and ``layers`` and ``segmentation``'s other
    fields, copied (dictionaries, conversion parameters); shapes and points are shared,
    as they are read-only."""
    fields: dict[str, Any] = {
        "source_representation": segmentation.source_representation,
        "conversion_parameters": segmentation.conversion_parameters.copy(),
        "reference_geometry": segmentation.reference_geometry,
        "contained_representations": list(segmentation.contained_representations),
        "provenance": dict(segmentation.provenance),
        "extras": segmentation.extras,
        "contours": segmentation.contours,
        "surfaces": segmentation.surfaces,
        "points": segmentation.points,
    }
    fields.update(changes)
    return Segmentation(segments, layers, **fields)


def copied_layers(segmentation: Segmentation) -> list[Layer]:
    return [
        Layer(layer.array.copy(), layer.geometry, max_fraction=layer.max_fraction)
        for layer in segmentation.layers
    ]


def with_segments(segmentation: Segmentation, segments: Iterable[Segment]) -> Segmentation:
    """A copy of ``segmentation`` (arrays too) whose segments are ``segments``."""
    return rebuilt(segmentation, segments, copied_layers(segmentation))


def needs_voxels(segmentation: Segmentation, what: str) -> Segmentation:
    """``segmentation`` as a binary labelmap: itself when it is one, else derived (a
    warning says so: label values and overlaps are properties of voxels, and a surface or
    contour output will be made again from them). The result may share arrays with the
    input or the cache: callers make new arrays."""
    if segmentation.source_representation is Representation.BINARY_LABELMAP:
        return segmentation
    where = segmentation.provenance.get("source_path") or "the segmentation"
    warnings.warn(
        f"{what} works on voxels: the {segmentation.source_representation.value.lower()}s "
        f"of {where} were converted to a binary labelmap first",
        stacklevel=3,
    )
    return segmentation.representation(Representation.BINARY_LABELMAP)


def smallest_type(top: int) -> np.dtype[Any]:
    """The smallest unsigned type (at least uint8) that holds ``top``."""
    return np.dtype(np.promote_types(np.uint8, np.min_scalar_type(top)))
