"""Real NRRD labelmaps from dcmqi's test data read as pynrrd sees their voxels."""

from __future__ import annotations

from pathlib import Path

import nrrd
import numpy as np

import segio


def test_every_shared_nrrd_reads_like_pynrrd(shared_data: Path) -> None:
    files = sorted(shared_data.rglob("*.nrrd"))
    assert files, "no .nrrd file in the shared data"
    for path in files:
        segmentation = segio.read(path)
        voxels, header = nrrd.read(str(path), index_order="C")
        assert segmentation.layers, path
        assert voxels.ndim == 3, path
        expected = voxels
        values = sorted(int(v) for v in np.unique(expected) if v > 0)
        assert [s.label_value for s in segmentation.segments.values()] == values, path
        layer = segmentation.layers[0].array
        assert np.array_equal(layer, expected), path
        assert header["space"] == "left-posterior-superior"  # all of dcmqi's are LPS
        matrix = segmentation.require_geometry().ijk_to_lps
        # pynrrd gives one direction per row: the columns of our matrix.
        assert np.allclose(matrix[:3, :3], np.asarray(header["space directions"]).T), path
        assert np.allclose(matrix[:3, 3], header["space origin"]), path
