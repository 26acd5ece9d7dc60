"""Segmentations onto another grid: resampling (nearest neighbour, or quality through
overlap fractions), cropping to the segments, padding; and what a grid change loses.

A grid that holds the same voxel centres as the source, or some of them (axes permuted
or reversed, cropped, padded: :meth:`Geometry.index_map`), receives the voxels by index,
exactly, in either mode; only a grid between the source's voxel centres is sampled.
:func:`onto_grid` is what writers and :func:`segio.write` use: it says, in warnings, when
voxels were interpolated and how many voxels of each segment fell outside the new grid.
``docs/resampling.md`` states the rules; :mod:`.quality_resample` holds the quality mode.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from segio.errors import ValidationError
from segio.fileio.limits import check_grid
from segio.geometry import AxisScales, Geometry, IndexMap, common_grid
from segio.labels.values import label_counts
from segio.model import Layer, Segmentation
from segio.representations import Representation

if TYPE_CHECKING:
    from segio.reference import Reference

__all__ = [
    "MODES",
    "common_grid",
    "crop_to_segments",
    "onto_grid",
    "pad",
    "resample",
    "target_geometry",
    "voxels_outside",
]

#: Resampling modes: label at each target voxel centre, or overlap fractions (thin kept).
MODES = ("nearest", "quality")
#: Voxels whose positions are tested at a time by :func:`voxels_outside` (bounded memory).
_SLAB = 1 << 20
#: What ``--resample`` accepts, for hints.
_FORMS = (
    "give a reference image (a DICOM folder or file, NIfTI, NRRD, a segmentation) or a "
    "spacing in mm: 0.5 (every axis) or 1,1,2.5 (along i, j, k)"
)
_NUMBERS = re.compile(r"[\s\d.,+\-eExX]+")


def resample(
    segmentation: Segmentation, target: Geometry, *, mode: str = "nearest"
) -> Segmentation:
    """A copy of ``segmentation`` on ``target``, with its segments' names, colours,
    terminology, properties and label values.

    ``mode`` "nearest": every target voxel takes the label (or fraction) at its centre.
    "quality": each segment keeps the target voxels it covers at least half of, plus a
    one-voxel trace of what is thinner than a target voxel (:mod:`.quality_resample`);
    fractional layers take the mean fraction over each target voxel. Both modes are exact
    (the same) when the grids share a lattice: the identity on the same grid, a shift by
    whole voxels, a crop or a pad. Label values are never interpolated, segments that
    overlap keep overlapping, and voxels of ``target`` outside the source grid are
    background. Contours and surfaces are rasterised onto ``target`` (contours whose
    planes are not ``target``'s slices on their own grid first, then resampled).

    The target grid is checked against ``SEGIO_MAX_MEMORY`` for every layer before any is
    allocated. The reference geometry becomes ``target`` unless ``target`` is on its
    lattice (a crop of the image keeps citing the image).
    """
    if mode not in MODES:
        raise ValidationError(
            f"unknown resampling mode {mode!r}",
            hint="use 'nearest' (label at each voxel centre) or 'quality' (thin structures kept)",
        )
    if segmentation.source_representation not in _LABELMAPS:
        return _rasterised(segmentation, target, mode)
    source = segmentation.require_geometry()
    itemsize = sum(layer.array.dtype.itemsize for layer in segmentation.layers)
    check_grid(
        target.shape,
        itemsize,
        "the labelmap resampled onto the reference grid",
        path=segmentation.provenance.get("source_path"),
    )
    mapping = source.index_map(target)
    plan = None
    if mapping is None and mode == "quality":
        from segio.converters.quality_resample import _Plan

        plan = _Plan.make(source, target)
    layers = []
    for index, layer in enumerate(segmentation.layers):
        if mapping is not None:
            array = _by_index(layer.array, mapping, target.shape)
        elif plan is not None:
            array = _quality(segmentation, index, plan)
        else:
            array = _nearest(layer.array, source, target)
        layers.append(Layer(array, target, max_fraction=layer.max_fraction))
    reference = segmentation.reference_geometry
    if reference is None or reference.index_map(target) is None:
        reference = target
    return _rebuilt(segmentation, layers, reference)


def _quality(segmentation: Segmentation, index: int, plan: object) -> np.ndarray:
    from segio.converters import quality_resample

    assert isinstance(plan, quality_resample._Plan)
    layer = segmentation.layers[index]
    if layer.max_fraction is not None:
        return quality_resample.fractional(layer.array, layer.max_fraction, plan)
    labels = [s.label_value for s in segmentation.segments_in_layer(index)]
    return quality_resample.labelmap(layer.array, labels, plan)


def _rebuilt(
    segmentation: Segmentation, layers: list[Layer], reference: Geometry | None
) -> Segmentation:
    """``segmentation``'s segments and metadata (copied) with ``layers``: the arrays are
    not copied first only to be replaced, as a deep copy would."""
    return Segmentation(
        [
            dataclasses.replace(s, properties=dict(s.properties))
            for s in segmentation.segments.values()
        ],
        layers,
        source_representation=segmentation.source_representation,
        conversion_parameters=segmentation.conversion_parameters.copy(),
        reference_geometry=reference,
        contained_representations=segmentation.contained_representations,
        provenance=segmentation.provenance,
        extras=segmentation.extras,
        points=segmentation.points,
    )


def _rasterised(segmentation: Segmentation, target: Geometry, mode: str) -> Segmentation:
    """Contours or surfaces as a labelmap on ``target`` (through the representation cache).

    Surfaces are rasterised onto ``target`` itself (cropped to it: nothing is grown).
    Contours are, when ``target``'s slices are their planes; else a grid between their
    planes would get no contour (or every contour snapped), so they are rasterised on
    their own grid (the reference geometry, or one derived from them) and that labelmap
    is resampled in ``mode``.
    """
    binary = Representation.BINARY_LABELMAP
    if segmentation.source_representation is Representation.PLANAR_CONTOURS:
        if not _on_contour_planes(segmentation, target):
            return resample(segmentation.representation(binary), target, mode=mode)
        result = segmentation.representation(binary, geometry=target)
    else:
        result = segmentation.representation(
            binary, geometry=target, crop_to_reference_image_geometry=1
        )
    result.conversion_parameters = segmentation.conversion_parameters.copy()
    if result.require_geometry() != target:  # contours grown to hold every plane
        return resample(result, target)
    return result


def _on_contour_planes(segmentation: Segmentation, target: Geometry) -> bool:
    """True when ``target``'s slices are the contours' grid's slices: the same plane
    normal, the same slice spacing and slices at whole steps from one another."""
    from segio.converters.contours_to_labelmap import derive_grid

    own = segmentation.reference_geometry or derive_grid(segmentation)
    normal = np.cross(own.direction[:, 0], own.direction[:, 1])
    other = np.cross(target.direction[:, 0], target.direction[:, 1])
    if abs(abs(float(normal @ other)) - 1.0) > 1e-6:
        return False
    step = float(own.ijk_to_lps[:3, 2] @ normal)
    if abs(abs(float(target.ijk_to_lps[:3, 2] @ normal)) - abs(step)) > 1e-3 * abs(step):
        return False
    offset = float((target.origin - own.origin) @ normal) / step
    return abs(offset - round(offset)) < 1e-3


_LABELMAPS = frozenset({Representation.BINARY_LABELMAP, Representation.FRACTIONAL_LABELMAP})


# -- crop and pad ------------------------------------------------------------------------


def crop_to_segments(segmentation: Segmentation, margin: int = 0) -> Segmentation:
    """``segmentation`` on the smallest box of its grid holding every segment's voxels
    (fractional: every voxel with a fraction), widened by ``margin`` voxels per side but
    never beyond the grid. Exact (voxels move by index); the reference geometry is kept
    (or, without one, the grid before cropping becomes it: the image is still cited).

    Contours and surfaces are made a labelmap first. A segmentation without any voxel
    is returned as it is, with a warning: there is nothing to crop to.
    """
    margin = _count(margin, "the crop margin")
    labelmap = _as_labelmap(segmentation)
    grid = labelmap.require_geometry()
    box = _content_box(labelmap)
    if box is None:
        warnings.warn(
            "every segment is empty, so there is nothing to crop to; the grid is kept",
            stacklevel=2,
        )
        return _moved(labelmap, grid)
    low = np.maximum(box[0] - margin, 0)
    high = np.minimum(box[1] + margin, np.array(grid.shape) - 1)
    return _moved(labelmap, grid.cropped(low.tolist(), (high - low + 1).tolist()))


def pad(segmentation: Segmentation, voxels: int | Sequence[int]) -> Segmentation:
    """``segmentation`` on its grid grown by ``voxels`` on every side: one count for
    every axis or three along i, j, k. Exact (voxels move by index); contours and
    surfaces are made a labelmap first."""
    if not isinstance(voxels, Sequence | np.ndarray):
        counts = [_count(voxels, "the padding")] * 3
    else:
        counts = [_count(v, "the padding") for v in voxels]
        if len(counts) != 3:
            raise ValidationError(
                f"padding is one count or three (along i, j, k), got {len(counts)}",
                hint="for example 5, or 5,5,2",
            )
    labelmap = _as_labelmap(segmentation)
    grid = labelmap.require_geometry()
    grow = np.array(counts[::-1])  # (k, j, i)
    target = grid.cropped((-grow).tolist(), (np.array(grid.shape) + 2 * grow).tolist())
    return _moved(labelmap, target)


def _moved(labelmap: Segmentation, target: Geometry) -> Segmentation:
    """``labelmap`` moved by index onto ``target`` (on its lattice), still citing the
    image it was drawn on: its reference geometry, or else its own grid."""
    result = resample(labelmap, target)
    result.reference_geometry = labelmap.reference_geometry or labelmap.require_geometry()
    return result


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValidationError(
            f"{what} must be a whole number of voxels >= 0, got {value!r}", hint="for example 5"
        )
    return int(value)


def _as_labelmap(segmentation: Segmentation) -> Segmentation:
    if segmentation.source_representation in _LABELMAPS:
        return segmentation
    return segmentation.representation(Representation.BINARY_LABELMAP)


def _content_box(
    segmentation: Segmentation,
) -> tuple[NDArray[np.int64], NDArray[np.int64]] | None:
    """Inclusive (k, j, i) box around every segment's voxels; None when there are none."""
    boxes = [box for box in segmentation.extents().values() if box is not None]
    lows = [np.array([b[0][0], b[1][0], b[2][0]]) for b in boxes]
    highs = [np.array([b[0][1], b[1][1], b[2][1]]) for b in boxes]
    for layer in segmentation.layers:
        if layer.max_fraction is None:
            continue
        filled = [
            np.flatnonzero(np.any(layer.array, axis=other)) for other in ((1, 2), (0, 2), (0, 1))
        ]
        if all(len(f) for f in filled):
            lows.append(np.array([f[0] for f in filled]))
            highs.append(np.array([f[-1] for f in filled]))
    if not lows:
        return None
    return np.min(lows, axis=0).astype(np.int64), np.max(highs, axis=0).astype(np.int64)


# -- target grids ------------------------------------------------------------------------


def target_geometry(
    spec: Geometry | Reference | str | os.PathLike[str] | Sequence[float],
    segmentation: Segmentation,
) -> Geometry:
    """The grid ``--resample`` names: a Geometry as it is; a reference image (a DICOM
    folder or file, NIfTI, NRRD, any segmentation: :func:`segio.reference.read_reference`)
    as its grid; a spacing in mm, "0.5" for every axis or "1,1,2.5" along i, j, k (also
    numbers), as ``segmentation``'s grid at that spacing (:meth:`Geometry.with_spacing`:
    same axes and outer corner, extent rounded up to whole voxels).

    Text that names an existing file and also reads as a spacing is refused as ambiguous.
    """
    from segio.reference import Reference, read_reference

    if isinstance(spec, Geometry):
        return spec
    if isinstance(spec, Reference):
        return spec.geometry
    if isinstance(spec, str | os.PathLike):
        text = os.fspath(spec)
        exists = bool(text.strip()) and Path(text).exists()
        numeric = _NUMBERS.fullmatch(text) is not None and any(c.isdigit() for c in text)
        if exists and numeric:
            raise ValidationError(
                f"{text!r} names a file and reads as a spacing too",
                hint=f"write ./{text} for the file, or the spacing as three numbers",
            )
        if exists:
            return read_reference(text).geometry
        if not numeric:
            raise ValidationError(
                f"{text!r} is neither an existing image nor a spacing", hint=_FORMS
            )
        values = _spacing(re.split(r"[,xX\s]+", text.strip()), text)
    else:
        values = _spacing(list(spec), spec)
    return _grid_of(segmentation).with_spacing(values)


def _spacing(parts: Sequence[object], spec: object) -> list[float]:
    try:
        values = [float(p) for p in parts]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        values = []
    if len(values) not in (1, 3) or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValidationError(f"{spec!r} is not a spacing (one or three numbers > 0)", hint=_FORMS)
    return values * 3 if len(values) == 1 else values


def _grid_of(segmentation: Segmentation) -> Geometry:
    """The grid a new spacing applies to: the labelmap's, else the reference geometry,
    else the grid contours or surfaces are rasterised on by default."""
    grid = segmentation.geometry or segmentation.reference_geometry
    if grid is None:
        grid = _as_labelmap(segmentation).require_geometry()
    return grid


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
    """The value of ``array`` at every target voxel centre (0 outside the source grid); a
    centre on a boundary between two source voxels takes the higher index."""
    scales = source.axis_scales(target)
    if scales is not None:
        return _nearest_along_axes(array, scales, source, target)
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


def _nearest_along_axes(
    array: np.ndarray, scales: AxisScales, source: Geometry, target: Geometry
) -> np.ndarray:
    """:func:`_nearest` for grids whose axes run along each other: one source index per
    target index and axis, gathered axis by axis (ten times faster than sampling every
    voxel's coordinates), a slab of target slices at a time."""
    indices, valid = [], []
    for a in range(3):  # target axes i, j, k
        t = np.arange(target.size_ijk[a], dtype=np.float64)
        index = np.floor(scales.scales[a] * t + scales.offsets[a] + 0.5 + 1e-6).astype(np.int64)
        inside = (index >= 0) & (index < source.size_ijk[scales.axes[a]])
        indices.append(np.clip(index, 0, source.size_ijk[scales.axes[a]] - 1))
        valid.append(inside)
    view = np.transpose(array, [2 - scales.axes[2 - n] for n in range(3)])
    out = np.zeros(target.shape, dtype=array.dtype)
    rows = max(1, _SLAB * 16 // max(1, target.shape[1] * target.shape[2]))
    for k0 in range(0, target.shape[0], rows):
        part = np.take(view, indices[2][k0 : k0 + rows], axis=0)
        part = np.take(np.take(part, indices[1], axis=1), indices[0], axis=2)
        part[~valid[2][k0 : k0 + rows]] = 0
        part[:, ~valid[1]] = 0
        part[:, :, ~valid[0]] = 0
        out[k0 : k0 + rows] = part
    return out
