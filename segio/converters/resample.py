"""Labelmap layers onto another grid: exact when the grids share a lattice, else nearest
neighbour; and what a grid change loses.

A grid that holds the same voxel centres as the source, or some of them (axes permuted
or reversed, cropped, padded: :meth:`Geometry.index_map`), receives the voxels by index,
exactly; only a grid between the source's voxel centres is sampled. :func:`onto_grid` is
what writers and :func:`segio.write` use: it says, in warnings, when voxels were
interpolated and how many voxels of each segment fell outside the new grid.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
from numpy.typing import NDArray

from segio.fileio.limits import check_grid
from segio.geometry import Geometry, IndexMap
from segio.labels.values import label_counts
from segio.model import Layer, Segmentation

#: Voxels whose positions are tested at a time by :func:`voxels_outside` (bounded memory).
_SLAB = 1 << 20


def resample(segmentation: Segmentation, target: Geometry) -> Segmentation:
    """A copy of ``segmentation`` on ``target``: every voxel takes the label at its centre.

    Label values are never interpolated. Voxels of ``target`` outside the source grid are
    background. Exact when the grids share a lattice (axes permuted or flipped, cropping
    or padding). The target grid (a reference series, read from files) is checked against
    ``SEGIO_MAX_MEMORY`` for every layer before any is allocated.
    """
    source = segmentation.require_geometry()
    itemsize = sum(layer.array.dtype.itemsize for layer in segmentation.layers)
    check_grid(
        target.shape,
        itemsize,
        "the labelmap resampled onto the reference grid",
        path=segmentation.provenance.get("source_path"),
    )
    result = segmentation.copy()
    mapping = source.index_map(target)
    layers = []
    for layer in segmentation.layers:
        if mapping is not None:
            array = _by_index(layer.array, mapping, target.shape)
        else:
            array = _nearest(layer.array, source, target)
        layers.append(Layer(array, target, max_fraction=layer.max_fraction))
    result.layers = layers
    result.validate()
    return result


def onto_grid(
    segmentation: Segmentation, target: Geometry, *, what: str = "the reference grid"
) -> Segmentation:
    """``segmentation`` on ``target`` (a copy), saying what the move costs.

    Nothing is said when the grids share a lattice (the voxels move exactly); a warning
    says when they are sampled by nearest neighbour, and another lists the voxels of each
    segment whose centre lies outside ``target`` (a partial overlap), which are lost.
    """
    source = segmentation.require_geometry()
    if source.is_close(target, atol=1e-4):  # the same grid, within DS rounding
        result = copy.copy(segmentation)  # shares the arrays: nothing moves
        result.layers = [
            Layer(layer.array, target, max_fraction=layer.max_fraction)
            for layer in segmentation.layers
        ]
        return result
    warn_lost(segmentation, voxels_outside(segmentation, target), what)
    filled = any(layer.array.any() for layer in segmentation.layers)
    if filled and source.index_map(target) is None:  # an empty labelmap loses nothing
        warnings.warn(
            f"the segmentation grid {source!r} is not on the lattice of {what} {target!r}; "
            "resampled onto it (nearest neighbour)",
            stacklevel=2,
        )
    return resample(segmentation, target)


def warn_lost(segmentation: Segmentation, lost: dict[str, int], what: str) -> None:
    """One warning naming the segments that lose voxels outside ``what``, with counts."""
    counts = segmentation.voxel_counts() if any(lost.values()) else {}
    losers = [
        f"{segmentation.segments[key].name!r} {n} of {counts[key]}" for key, n in lost.items() if n
    ]
    if losers:
        more = f" and {len(losers) - 10} more" if len(losers) > 10 else ""
        shown = ", ".join(losers[:10]) + more
        warnings.warn(
            f"{what} covers only part of the segmentation; voxels outside it are lost: {shown}",
            stacklevel=3,
        )


def voxels_outside(segmentation: Segmentation, target: Geometry) -> dict[str, int]:
    """Per segment id, how many of its voxels have their centre outside ``target``.

    The source grid's corner voxels are tested first: when all are inside (the usual
    case, a grid within the reference) nothing else is computed.
    """
    result = {key: 0 for key in segmentation.segments}
    source = segmentation.geometry
    if source is None or not segmentation.layers:
        return result
    transform = target.lps_to_ijk @ source.ijk_to_lps
    size = np.array(target.size_ijk, dtype=np.float64)
    far = np.array(source.size_ijk, dtype=np.float64) - 1
    corners = np.array(np.meshgrid(*[(0.0, n) for n in far], indexing="ij")).reshape(3, -1).T
    if _inside(corners @ transform[:3, :3].T + transform[:3, 3], size).all():
        return result
    rows, columns = source.shape[1:]
    step = max(1, _SLAB // (rows * columns))
    for index, layer in enumerate(segmentation.layers):
        members = segmentation.segments_in_layer(index)
        if not members:
            continue
        values = [1] if layer.is_fractional else [s.label_value for s in members]
        counts = np.zeros(len(values), dtype=np.int64)
        for k0 in range(0, source.shape[0], step):
            slab: NDArray[np.integer] = layer.array[k0 : k0 + step]
            if layer.max_fraction is not None:  # voxels at least half inside, as mask()
                half = max(1, -(-layer.max_fraction // 2))
                slab = (slab >= half).view(np.uint8)
            k, j, i = np.nonzero(slab)
            if not k.size:
                continue
            ijk = np.column_stack([i, j, k + k0]).astype(np.float64)
            outside = ~_inside(ijk @ transform[:3, :3].T + transform[:3, 3], size)
            if outside.any():
                labels = np.asarray(slab[k[outside], j[outside], i[outside]])
                counts += label_counts(labels.astype(np.int64), values)
        for segment, count in zip(members, counts.tolist(), strict=False):
            result[segment.id] = int(count)
    return result


def _inside(ijk: NDArray[np.float64], size: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Rows of continuous (i, j, k) indices inside a grid of ``size`` voxels."""
    eps = 1e-6
    inside: NDArray[np.bool_] = np.all((ijk >= -0.5 - eps) & (ijk < size - 0.5 - eps), axis=1)
    return inside


def _by_index(array: np.ndarray, mapping: IndexMap, shape: tuple[int, int, int]) -> np.ndarray:
    """The voxels of ``array`` on the grid ``mapping`` places on its lattice, zero outside.

    Each target axis runs along one source axis, forwards or backwards, so what overlaps
    is one box on each side: a transposed, reversed view copied in one assignment.
    """
    out = np.zeros(shape, dtype=array.dtype)
    view = np.transpose(array, mapping.axes)
    target, source = [], []
    for axis in range(3):
        size, count = shape[axis], view.shape[axis]
        step, begin = mapping.steps[axis], mapping.starts[axis]
        if step > 0:  # source index begin + t, within 0 .. count - 1
            low, high = max(0, -begin), min(size, count - begin)
            if high <= low:
                return out
            source.append(slice(begin + low, begin + high))
        else:  # source index begin - t
            low, high = max(0, begin - count + 1), min(size, begin + 1)
            if high <= low:
                return out
            stop = begin - high
            source.append(slice(begin - low, stop if stop >= 0 else None, -1))
        target.append(slice(low, high))
    out[tuple(target)] = view[tuple(source)]
    return out


def _nearest(array: np.ndarray, source: Geometry, target: Geometry) -> np.ndarray:
    from scipy import ndimage

    # target (i, j, k) -> source (i, j, k), then reorder both to the arrays' (k, j, i).
    ijk = source.lps_to_ijk @ target.ijk_to_lps
    order = [2, 1, 0]
    matrix = ijk[:3, :3][np.ix_(order, order)]
    offset = ijk[:3, 3][order]
    # grid-constant: a voxel extends half a step around its centre (plain "constant"
    # would call points between the last centre and the edge outside).
    resampled: np.ndarray = ndimage.affine_transform(
        array, matrix, offset=offset, output_shape=target.shape, order=0, mode="grid-constant"
    )
    return resampled
