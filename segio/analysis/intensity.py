"""Image values inside each segment: Slicer's ``ScalarVolumeSegmentStatisticsPlugin``.

The statistics are taken on the image's own grid, as Slicer does: when the segmentation
is on another grid its labelmap is resampled onto the image's by nearest neighbour
(:func:`segio.converters.resample.resample`, exact when the grids share a lattice), and
every image voxel whose centre falls in a segment counts once. Voxels of a segment outside
the image are not counted (``intensity_voxel_count`` says how many were), nor are image
values that are not numbers (NaN: the slices missing from a DICOM series).

All segments of a layer are gathered in one pass: the image values under the layer's
non-zero voxels, sorted by segment with one stable sort; the loop over segments then
works on each segment's own values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.errors import GeometryError
from segio.fileio.limits import check_allocation
from segio.model import Segmentation

__all__ = ["INTENSITY_KEYS", "intensity_statistics"]

#: The intensity columns besides the percentiles, in order.
INTENSITY_KEYS = ("intensity_voxel_count", "mean", "stdev", "min", "max", "median")


def intensity_statistics(
    labelmap: Segmentation,
    image: Any,
    *,
    percentiles: Sequence[float],
) -> dict[str, dict[str, Any]]:
    """Per segment id: count, mean, sample SD, min, max, median and ``percentiles`` of
    the image values inside it. ``labelmap`` has layers (a labelmap segmentation);
    ``image`` is a path or a ``(values, Geometry)`` pair (:func:`read_image`)."""
    from segio.analysis.images import read_image
    from segio.analysis.statistics import _layer_labels, percentile_key

    values, geometry = read_image(image) if isinstance(image, str | os.PathLike) else image
    values = np.asarray(values)
    if values.shape != geometry.shape:
        raise GeometryError(
            f"the image array has shape {values.shape} but its grid {geometry.shape}"
        )
    grid = labelmap.geometry
    if grid is not None and not grid.is_close(geometry, atol=1e-4):
        from segio.converters.resample import resample

        labelmap = resample(labelmap, geometry)
    keys = [percentile_key(q) for q in percentiles]
    result = {s.id: _row(None, percentiles, keys) for s in labelmap.segments.values()}
    flat_values = values.reshape(-1)
    for index in range(len(labelmap.layers)):
        members = labelmap.segments_in_layer(index)
        if not members:
            continue
        labels = _layer_labels(labelmap, index).reshape(-1)
        fractional = labelmap.layers[index].is_fractional
        label_values = [1] if fractional else [s.label_value for s in members]
        for segment, found in zip(
            members, _grouped(labels, flat_values, label_values), strict=True
        ):
            result[segment.id] = _row(found, percentiles, keys)
    return result


def _grouped(
    labels: NDArray[np.integer], values: NDArray[Any], wanted: Sequence[int]
) -> list[NDArray[np.float64]]:
    """The image values (NaN left out) under each of ``wanted`` label values, one array each."""
    check_allocation(
        int(np.count_nonzero(labels)) * 32,
        "the image values inside the segments, with their places",
    )
    inside = np.flatnonzero(labels)
    found = labels[inside].astype(np.int64)
    table = np.asarray(sorted(set(int(v) for v in wanted)), dtype=np.int64)
    position = {int(v): n for n, v in enumerate(table)}
    at = np.searchsorted(table, found)
    listed = table[np.minimum(at, len(table) - 1)] == found
    picked = values[inside[listed]].astype(np.float64, copy=False)
    at = at[listed]
    numbers = ~np.isnan(picked)
    if not numbers.all():
        picked, at = picked[numbers], at[numbers]
    order = np.argsort(at, kind="stable")
    ordered = picked[order]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(at, minlength=len(table)))])
    return [ordered[bounds[position[int(v)]] : bounds[position[int(v)] + 1]] for v in wanted]


def _row(
    found: NDArray[np.float64] | None, percentiles: Sequence[float], keys: Sequence[str]
) -> dict[str, Any]:
    """The intensity columns of one segment; None where there is no value to describe."""
    row: dict[str, Any] = {"intensity_voxel_count": 0 if found is None else int(found.size)}
    if found is None or not found.size:
        row.update(dict.fromkeys(INTENSITY_KEYS[1:]))
        row.update(dict.fromkeys(keys))
        return row
    with np.errstate(invalid="ignore", over="ignore"):  # inf in the image: inf or NaN
        # Sample standard deviation (n - 1), as Slicer's vtkImageAccumulate and ITK give it.
        stdev = float(found.std(ddof=1)) if found.size > 1 else math.nan
        quantiles = np.percentile(found, [50.0, *percentiles])
        mean = float(found.mean())
    row.update(
        mean=_number(mean),
        stdev=_number(stdev),
        min=float(found.min()),
        max=float(found.max()),
        median=_number(quantiles[0]),
    )
    row.update({key: _number(q) for key, q in zip(keys, quantiles[1:], strict=True)})
    return row


def _number(value: float) -> float | None:
    """A float, or None for NaN (an SD of one value, a mean of +inf and -inf)."""
    number = float(value)
    return None if math.isnan(number) else number
