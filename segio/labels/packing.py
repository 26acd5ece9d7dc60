"""First-fit packing of masks into as few labelmap layers as possible (Slicer's rule).

Every path that builds layers from masks (DICOM SEG frames, rasterised contours and
surfaces, :meth:`segio.model.Segmentation.pack_layers`) places them through
:class:`FirstFitPacker`, so segments land in the same layers whatever the source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from segio.fileio.limits import check_allocation


class FirstFitPacker:
    """Slicer's first-fit layer packing, for every path that builds layers from masks.

    A mask goes to the first layer that has no voxel under it, with that layer's next
    label value (above every value already in it, so voxels no segment owns are never
    absorbed) or the label the caller gives. When no layer is free, a new one starts.
    Greedy and order-dependent, like ``vtkSegmentation::CollapseBinaryLabelmaps``, and
    lossless.

    Testing layer after layer would cost every segment every layer: 5,000 segments that
    overlap make 12.5 million tests. So each voxel also keeps how many layers from the
    first are set at it (``_full``, one byte a voxel, two from 255 layers): no layer below
    the largest count over a mask can take it, and the search starts there. The counts
    exist only once a second layer does, so non-overlapping segments cost nothing more.
    """

    def __init__(self, shape: tuple[int, int, int], dtype: npt.DTypeLike = np.uint8) -> None:
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.layers: list[NDArray[np.integer]] = []
        self._tops: list[int] = []
        self._full: NDArray[np.unsignedinteger[Any]] | None = None

    def keep(self, array: NDArray[np.integer], top: int) -> None:
        """Add an existing layer whose highest used value is ``top``."""
        self.layers.append(array)
        self._tops.append(top)
        if self._full is not None:
            self._extend_counts(len(self.layers) - 1)
        elif len(self.layers) == 2:
            self._full = np.zeros(self.shape, dtype=np.uint8)
            for index in range(2):
                self._extend_counts(index)

    def place(
        self, regions: Sequence[tuple[Any, NDArray[np.bool_]]], label: int | None = None
    ) -> tuple[int, int]:
        """Paint one mask, given as (index into a layer, boolean mask of that region) pairs.

        Returns its (layer, label value). An empty mask (no regions) takes a label in the
        first layer.
        """
        return self._place([_Box(where, mask) for where, mask in regions], label)

    def place_voxels(self, voxels: NDArray[np.intp], label: int) -> int:
        """Paint ``label`` at flat (C-order) voxel indices; return the layer chosen."""
        return self._place([_Flat(voxels)], label)[0]

    def _place(self, picks: Sequence[_Box | _Flat], label: int | None) -> tuple[int, int]:
        start = 0
        if self._full is not None:
            start = max((int(p.values(self._full).max(initial=0)) for p in picks), default=0)
        target = next(
            (
                n
                for n in range(start, len(self.layers))
                if not any(p.values(self.layers[n]).any() for p in picks)
            ),
            len(self.layers),
        )
        if target == len(self.layers):
            check_allocation(
                math.prod(self.shape) * (sum(a.itemsize for a in self.layers) + 2 + 1),
                f"{len(self.layers) + 1} overlapping labelmap layers",
            )
            self.keep(np.zeros(self.shape, dtype=self.dtype), 0)
        value = self._tops[target] + 1 if label is None else label
        if value > np.iinfo(self.layers[target].dtype).max:
            self.layers[target] = self.layers[target].astype(np.min_scalar_type(value))
        for pick in picks:
            pick.assign(self.layers[target], value)
        self._tops[target] = max(self._tops[target], value)
        if self._full is not None:
            for pick in picks:
                pick.advance(self._full, self.layers, target)
        return target, value

    def _extend_counts(self, index: int) -> None:
        """Count layer ``index`` (the last so far) where every layer before it is set."""
        assert self._full is not None
        if index >= np.iinfo(self._full.dtype).max:
            self._full = self._full.astype(np.min_scalar_type(index + 1))
        self._full[(self._full == index) & (self.layers[index] != 0)] = index + 1


@dataclass(frozen=True)
class _Box:
    """A mask given as a region of the volume (basic index) and a boolean array in it."""

    where: Any
    mask: NDArray[np.bool_]

    def values(self, array: NDArray[Any]) -> NDArray[Any]:
        return np.asarray(array[self.where][self.mask])

    def assign(self, array: NDArray[Any], value: int) -> None:
        array[self.where][self.mask] = value

    def advance(self, full: NDArray[Any], layers: Sequence[NDArray[Any]], target: int) -> None:
        """Where layer ``target`` extended a run of set layers from the first, extend it."""
        view = full[self.where]
        at = self.mask & (view == target)
        for layer in range(target + 1, len(layers) + 1):
            if not at.any():
                return
            view[at] = layer
            if layer < len(layers):
                at &= layers[layer][self.where] != 0


@dataclass(frozen=True)
class _Flat:
    """A mask given as flat (C-order) voxel indices."""

    voxels: NDArray[np.intp]

    def values(self, array: NDArray[Any]) -> NDArray[Any]:
        return np.asarray(np.take(array, self.voxels))

    def assign(self, array: NDArray[Any], value: int) -> None:
        np.put(array, self.voxels, value)

    def advance(self, full: NDArray[Any], layers: Sequence[NDArray[Any]], target: int) -> None:
        """Where layer ``target`` extended a run of set layers from the first, extend it."""
        at = self.voxels[full.take(self.voxels) == target]
        for layer in range(target + 1, len(layers) + 1):
            if not at.size:
                return
            np.put(full, at, layer)
            if layer < len(layers):
                at = at[layers[layer].take(at) != 0]


def bounding_box(mask: NDArray[np.bool_]) -> tuple[slice, slice, slice] | None:
    """Smallest box holding every True voxel, as slices; None for an empty mask."""
    bounds = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(np.any(mask, axis=others))
        if hit.size == 0:
            return None
        bounds.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return (bounds[0], bounds[1], bounds[2])
