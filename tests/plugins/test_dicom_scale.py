"""DICOM SEG and RTSTRUCT with thousands of segments: reading and writing stay near-linear.

A file with 5,000 segments is small (kilobytes per segment), so any step that visits every
segment for every segment (every layer for every segment, every frame for every segment)
dominates: 10 times the segments must cost far less than 100 times the time. Grids are tiny
so that the test measures the per-segment work, not voxels.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import segio
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.testing.series import reference_series

#: 10 times the segments may cost at most this many times the time (quadratic: ~100).
MAX_RATIO = 25
GRID = Geometry.from_spacing((5, 32, 32), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))


def disjoint(count: int) -> Segmentation:
    """``count`` one-voxel segments in one layer."""
    labels = np.zeros(GRID.shape, dtype=np.uint16)
    flat = labels.reshape(-1)
    flat[np.arange(count) * (flat.size // count)] = np.arange(1, count + 1)
    segments = [
        Segment(f"s{n}", f"S{n}", (1.0, 0.5, 0.0), label_value=n) for n in range(1, count + 1)
    ]
    return Segmentation(segments, [Layer(labels, GRID)])


def overlapping(count: int) -> Segmentation:
    """``count`` segments on the same nine voxels: one layer each."""
    geometry = Geometry.from_spacing((2, 8, 8), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    mask = np.zeros(geometry.shape, dtype=np.uint8)
    mask[0, 2:5, 2:5] = 1
    segments = [
        Segment(f"s{n}", f"S{n}", (0.0, 0.5, 1.0), layer=n, label_value=1) for n in range(count)
    ]
    return Segmentation(segments, [Layer(mask, geometry) for _ in range(count)])


def _seconds(
    make: Callable[[int], Segmentation], count: int, fmt: str, folder: Path
) -> tuple[float, int]:
    """Time to write ``count`` segments as ``fmt`` and read them back; segments read."""
    seg = make(count)
    series = reference_series(seg.require_geometry(), folder / f"series-{count}")
    target = folder / f"{count}.dcm"
    options = {"reference": series} if fmt == "rtstruct" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        segio.write(seg, target, format=fmt, reference=series)
        back = segio.read(target, format=fmt, **options)
        return time.perf_counter() - started, len(back.segments)


@pytest.mark.parametrize(
    ("fmt", "make"),
    [
        ("dicom-seg", disjoint),
        ("dicom-seg", overlapping),
        ("rtstruct", disjoint),
        ("rtstruct", overlapping),
    ],
    ids=["seg-one-layer", "seg-a-layer-each", "rtstruct", "rtstruct-a-layer-each"],
)
def test_five_thousand_segments_cost_near_linear_time(
    tmp_path: Path, fmt: str, make: Callable[[int], Segmentation]
) -> None:
    _seconds(make, 20, fmt, tmp_path)  # imports and caches, outside the measure
    small, read_small = _seconds(make, 500, fmt, tmp_path)
    large, read_large = _seconds(make, 5000, fmt, tmp_path)
    assert (read_small, read_large) == (500, 5000)
    assert large < MAX_RATIO * small, f"500: {small:.2f} s, 5,000: {large:.2f} s"
