"""Nearest-neighbour resampling of labelmap layers onto another grid."""

from __future__ import annotations

import numpy as np

from segio.geometry import Geometry
from segio.limits import check_grid
from segio.model import Layer, Segmentation


def resample(segmentation: Segmentation, target: Geometry) -> Segmentation:
    """A copy of ``segmentation`` on ``target``: every voxel takes the label at its centre.

    Label values are never interpolated. Voxels of ``target`` outside the source grid are
    background. Exact when the grids are aligned (only cropping or padding). The target
    grid (a reference series, read from files) is checked against ``SEGIO_MAX_MEMORY``
    for every layer before any is allocated.
    """
    source = segmentation.require_geometry()
    if source.is_close(target):
        return segmentation.copy()
    itemsize = sum(layer.array.dtype.itemsize for layer in segmentation.layers)
    check_grid(
        target.shape,
        itemsize,
        "the labelmap resampled onto the reference grid",
        path=segmentation.provenance.get("source_path"),
    )
    result = segmentation.copy()
    offset = target.offset_in(source)
    layers = []
    for layer in segmentation.layers:
        if offset is not None:
            array = _crop_or_pad(layer.array, offset, target.shape)
        else:
            array = _nearest(layer.array, source, target)
        layers.append(Layer(array, target, max_fraction=layer.max_fraction))
    result.layers = layers
    result.validate()
    return result


def _crop_or_pad(
    array: np.ndarray, start: tuple[int, int, int], shape: tuple[int, int, int]
) -> np.ndarray:
    """The box of ``shape`` that begins at ``start`` (k, j, i) of ``array``, zero outside."""
    out = np.zeros(shape, dtype=array.dtype)
    src = tuple(
        slice(max(0, s), min(n, s + m)) for s, n, m in zip(start, array.shape, shape, strict=True)
    )
    dst = tuple(slice(r.start - s, r.stop - s) for r, s in zip(src, start, strict=True))
    if all(r.stop > r.start for r in src):
        out[dst] = array[src]
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
