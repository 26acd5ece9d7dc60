"""Image values inside each segment: Slicer's ``ScalarVolumeSegmentStatisticsPlugin``.

The statistics are taken on the image's own grid, as Slicer does: when the segmentation
is on another grid its labelmap is resampled onto the image's by nearest neighbour
(:func:`segio.converters.resample.resample`, exact when the grids share a lattice), and
every image voxel whose centre falls in a segment counts once. Voxels of a segment outside
the image are not counted (``intensity_voxel_count`` says how many were), nor are image
values that are not numbers (NaN: the slices missing from a DICOM series).

The voxels of every segment of a layer are found in one pass, as runs along i
(:func:`segio.analysis.statistics.layer_runs`); each segment's values are then taken
from the image through its own runs, so nothing is sorted or indexed image-wide and the
memory beyond the image follows the largest segment.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.analysis.statistics import Runs, _layer_labels, layer_runs, percentile_key
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
    runs: Mapping[int, Runs] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per segment id: count, mean, sample SD, min, max, median and ``percentiles`` of
    the image values inside it. ``labelmap`` has layers (a labelmap segmentation);
    ``image`` is a path or a ``(values, Geometry)`` pair (:func:`read_image`). ``runs``
    are the layers' runs when already found (used when no resampling is needed)."""
    from segio.analysis.images import read_image

    values, geometry = read_image(image) if isinstance(image, str | os.PathLike) else image
    values = np.asarray(values)
    if values.shape != geometry.shape:
        raise GeometryError(
            f"the image array has shape {values.shape} but its grid {geometry.shape}"
        )
    grid = labelmap.geometry
    if grid is not None and not grid.is_close(geometry, atol=1e-4):
        from segio.converters.resample import resample

        labelmap, runs = resample(labelmap, geometry), None
    keys = [percentile_key(q) for q in percentiles]
    result = {s.id: _row(None, percentiles, keys) for s in labelmap.segments.values()}
    flat_values = values.reshape(-1)
    for index in range(len(labelmap.layers)):
        members = labelmap.segments_in_layer(index)
        if not members:
            continue
        fractional = labelmap.layers[index].is_fractional
        label_values = [1] if fractional else [s.label_value for s in members]
        found_runs = (
            runs[index]
            if runs is not None and index in runs
            else layer_runs(_layer_labels(labelmap, index), label_values)
        )
        for n, segment in enumerate(members):
            found = _gathered(flat_values, found_runs, n, geometry.shape)
            result[segment.id] = _row(found, percentiles, keys)
    return result


def _gathered(
    values: NDArray[Any], runs: Runs, n: int, shape: tuple[int, int, int]
) -> NDArray[Any]:
    """The image values (NaN left out) under the runs of segment ``n``, in the image's
    own type: one index per voxel of this segment only, so memory follows the largest
    segment, not the image."""
    part = slice(int(runs.bounds[n]), int(runs.bounds[n + 1]))
    lengths = runs.length[part]
    count = int(lengths.sum())
    check_allocation(count * (8 + values.itemsize), "the image values inside a segment")
    starts = (runs.k[part] * shape[1] + runs.j[part]) * shape[2] + runs.i[part]
    # index of voxel t of run r = start_r + (t - first position of run r in the list)
    offsets = np.cumsum(lengths) - lengths
    index = np.repeat(starts - offsets, lengths) + np.arange(count, dtype=np.int64)
    found = values[index]
    if found.dtype.kind == "f":
        found = found[~np.isnan(found)]
    return found


def _row(
    found: NDArray[Any] | None, percentiles: Sequence[float], keys: Sequence[str]
) -> dict[str, Any]:
    """The intensity columns of one segment; None where there is no value to describe."""
    row: dict[str, Any] = {"intensity_voxel_count": 0 if found is None else int(found.size)}
    if found is None or not found.size:
        row.update(dict.fromkeys(INTENSITY_KEYS[1:]))
        row.update(dict.fromkeys(keys))
        return row
    with np.errstate(invalid="ignore", over="ignore"):  # inf in the image: inf or NaN
        # Sample standard deviation (n - 1), as Slicer's vtkImageAccumulate and ITK give it.
        stdev = float(found.std(ddof=1, dtype=np.float64)) if found.size > 1 else math.nan
        quantiles = np.percentile(found, [50.0, *percentiles])
        mean = float(found.mean(dtype=np.float64))
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
