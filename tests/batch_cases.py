"""Small datasets for the batch tests: cases of NIfTI + label table on one oblique grid,
with one reference CT series beside them (every case shares the grid)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import segio
from segio.model import Segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import grid, synthetic_segmentation

#: A tiny oblique, anisotropic, non-square grid (k, j, i).
SHAPE = (6, 14, 11)


def make_cases(
    folder: Path, count: int, *, shape: tuple[int, int, int] = SHAPE, copies: bool = False
) -> Path:
    """``folder/cases/cNN/seg.nii.gz`` (+ its label table) for ``count`` cases, different
    segmentations unless ``copies`` (one written, copied: fast for many cases), and one
    reference series ``folder/CT``; returns the folder of cases."""
    geometry = grid("oblique", shape=shape)
    reference_series(geometry, folder / "CT")
    cases = folder / "cases"
    first: Path | None = None
    for index in range(count):
        case = cases / f"c{index:02d}"
        case.mkdir(parents=True)
        if copies and first is not None:
            for file in first.iterdir():
                shutil.copy2(file, case / file.name)
            continue
        segmentation = synthetic_segmentation(n_segments=4, geometry=geometry, seed=index)
        segio.write(segmentation, case / "seg.nii.gz")
        first = case
    return cases


def run_segio(*args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``segio ARGS`` in a fresh process (stdout and stderr captured: no terminal)."""
    command = [sys.executable, "-c", "from segio.cli import main; main()", *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def report_lines(path: Path) -> dict[str, dict[str, Any]]:
    """The report's lines by case."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {line["case"]: line for line in lines}


def ledger_states(path: Path) -> dict[str, str]:
    """The last state of each output in a ledger (torn lines skipped)."""
    states: dict[str, str] = {}
    if not path.exists():
        return states
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        states[entry["output"]] = entry["state"]
    return states


def content(segmentation: Segmentation) -> list[tuple[Any, ...]]:
    """What two conversions must agree on, per segment: name, colour, terminology codes
    and voxels, as LPS points (a DICOM SEG keeps only the slices with a segment: its grid
    may be shorter); generated UIDs and dates left out."""
    found = []
    for key, segment in segmentation.segments.items():
        terms = segment.terminology
        codes = None
        if terms is not None:
            codes = (terms.category.value, terms.type.value, terms.category.scheme)
        mask = segmentation.mask(key)
        geometry = segmentation.layers[segment.layer].geometry
        points = geometry.ijk_to_points(np.argwhere(mask)[:, ::-1])  # LPS: grid-free
        voxels = np.unique(np.round(points, 2), axis=0).tobytes()
        found.append((segment.name, tuple(round(c, 3) for c in segment.color), codes, voxels))
    return found


class DiesWhenUnpickled:
    """A stand-in for a worker that dies (a segfault in a native library, the kernel's
    out-of-memory killer): unpickling it in the worker ends the process at once."""

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return os._exit, (3,)
