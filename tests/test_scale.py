"""Reading, writing and describing grow near-linearly with the number of segments.

5,000 layers (one segment each) or thousands of labels in one layer are real: atlases,
cell segmentations, per-lesion layers. Every per-segment step that scans all segments,
keys or arrays makes the whole quadratic (a 40 KB file once took 28 s to read), so each
format is timed at 500 and at 5,000 segments: ten times the segments may cost at most
25 times the time (quadratic would be 100 times), plus a fixed allowance for start-up
costs that do not depend on the count.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import segio
from segio.analysis.summary import summarize
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation

SMALL, LARGE = 500, 5000
#: 10x the segments may take at most this many times as long (quadratic: 100x) ...
RATIO = 25
#: ... plus this many seconds, for costs that do not grow with the segments (imports).
ALLOWANCE = 0.3


def many_layers(n: int) -> Segmentation:
    """``n`` overlapping one-voxel segments, one per layer, on a 2x2x2 grid."""
    grid = Geometry.from_spacing((2, 2, 2))
    layers, segments = [], []
    for index in range(n):
        array = np.zeros(grid.shape, np.uint8)
        array[index % 2, 0, 0] = 1
        layers.append(Layer(array, grid))
        segments.append(Segment(f"s{index}", f"segment {index}", layer=index, label_value=1))
    return Segmentation(segments, layers)


def many_labels(n: int) -> Segmentation:
    """``n`` labels (1..n) in one uint16 layer, one voxel each."""
    grid = Geometry.from_spacing((2, 64, 64))
    array = np.zeros(grid.shape, np.uint16)
    array.flat[:n] = np.arange(1, n + 1)
    segments = [Segment(f"s{v}", f"label {v}", label_value=v) for v in range(1, n + 1)]
    return Segmentation(segments, [Layer(array, grid)])


def timed(action: Callable[[], object], repeat: int) -> float:
    """Best of ``repeat`` runs: the noise of a shared machine only ever adds time."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def costs(make: Callable[[int], Segmentation], n: int, path: Path) -> dict[str, float]:
    segmentation = make(n)
    repeat = 2 if n == SMALL else 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write = timed(lambda: segio.write(segmentation, path, force=True), repeat)
        read = timed(lambda: segio.read(path), repeat)
        back = segio.read(path)
        info = timed(lambda: summarize(back), 3)  # cheap: best of three beats GC pauses
    assert len(back.segments) == n
    return {"write": write, "read": read, "info": info}


@pytest.mark.parametrize(
    ("make", "suffix"),
    [
        (many_layers, ".seg.nrrd"),
        (many_layers, ".nrrd"),
        (many_layers, ".nii.gz"),
        (many_labels, ".nii.gz"),
        (many_labels, ".seg.nrrd"),
    ],
    ids=["layers-seg.nrrd", "layers-nrrd", "layers-nii.gz", "labels-nii.gz", "labels-seg.nrrd"],
)
def test_ten_times_the_segments_is_not_a_hundred_times_the_time(
    tmp_path: Path, make: Callable[[int], Segmentation], suffix: str
) -> None:
    small = costs(make, SMALL, tmp_path / f"small{suffix}")
    large = costs(make, LARGE, tmp_path / f"large{suffix}")
    for step, seconds in large.items():
        allowed = RATIO * small[step] + ALLOWANCE
        assert seconds < allowed, (
            f"{step} of {LARGE} segments took {seconds:.2f} s, {SMALL} took "
            f"{small[step]:.3f} s: more than {allowed:.2f} s is worse than linear"
        )
