"""Overlap and surface distances (``segio.analysis``): exact on cases worked out by hand.

Distances are checked on anisotropic and oblique grids, where a distance counted in voxels
or with the spacings on the wrong axes would be wrong, and the one-pass per-label overlap
against the coefficients computed one mask at a time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from segio.analysis.distances import (
    boundary_voxels,
    mask_surface_distances,
    point_distances,
)
from segio.analysis.overlap import dice, jaccard, label_overlap
from segio.testing.synthetic import grid, synthetic_segmentation

# -- overlap -----------------------------------------------------------------------------------


def test_dice_and_jaccard() -> None:
    a = np.zeros((2, 3, 4), dtype=bool)
    b = a.copy()
    assert dice(a, b) == jaccard(a, b) == 1.0, "both empty: perfect agreement"
    a[0, 0, :2] = True
    b[0, 0, 1:3] = True
    assert dice(a, b) == pytest.approx(0.5)
    assert jaccard(a, b) == pytest.approx(1 / 3)
    assert dice(a, a) == jaccard(a, a) == 1.0
    assert dice(a, ~a) == jaccard(a, ~a) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        dice(a, a[0])


def test_label_overlap_equals_the_coefficients_mask_by_mask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    truth = synthetic_segmentation((20, 30, 26), 9, seed=4).layers[0].array
    other = np.roll(truth, 1, axis=2)
    other[other == 3] = 0  # label 3 missing on one side
    other[0, 0, 0] = 200  # a label only on one side
    monkeypatch.setattr("segio.analysis.overlap._CHUNK_VOXELS", 1000)  # many chunks
    result = label_overlap(truth, other)
    assert list(result.labels) == [*range(1, 10), 200]
    for n, label in enumerate(result.labels):
        assert result.dice[n] == pytest.approx(dice(truth == label, other == label))
        assert result.jaccard[n] == pytest.approx(jaccard(truth == label, other == label))
        assert result.voxels_a[n] == np.count_nonzero(truth == label)
    table = result.as_dict()
    assert table[3]["dice"] == 0.0 and table[200]["voxels_a"] == 0
    chosen = label_overlap(truth, other, labels=[7, 42])
    assert list(chosen.labels) == [7, 42]
    assert chosen.dice[1] == 1.0, "a label in neither array agrees"
    with pytest.raises(ValueError, match="integers"):
        label_overlap(truth.astype(float), other)


# -- surface distances ---------------------------------------------------------------------------


def test_boundary_voxels_are_those_with_a_face_outside() -> None:
    mask = np.zeros((5, 5, 5), dtype=bool)
    mask[1:4, 1:4, 1:4] = True
    boundary = boundary_voxels(mask)
    assert boundary.sum() == 26 and not boundary[2, 2, 2]
    full = np.ones((3, 3, 3), dtype=bool)
    assert boundary_voxels(full).sum() == 26, "the image border is outside"


def _block(shape: tuple[int, int, int], k: int, j: int, i: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[k : k + 3, j : j + 4, i : i + 5] = True
    return mask


@pytest.mark.parametrize("kind", ["anisotropic", "oblique"])
def test_a_shift_by_one_voxel_is_that_axis_spacing(kind: str) -> None:
    geometry = grid(kind)
    spacing_i, spacing_j, spacing_k = (float(s) for s in geometry.spacing)
    base = _block(geometry.shape, 2, 3, 4)
    assert mask_surface_distances(base, base, geometry).hausdorff == 0.0
    for moved, step in (
        (_block(geometry.shape, 3, 3, 4), spacing_k),
        (_block(geometry.shape, 2, 4, 4), spacing_j),
        (_block(geometry.shape, 2, 3, 5), spacing_i),
    ):
        distances = mask_surface_distances(base, moved, geometry)
        assert distances.hausdorff == pytest.approx(step)
        assert distances.hausdorff_percentile(95) == pytest.approx(step)
        assert 0.0 < distances.mean < step


def test_an_outlier_sets_the_hausdorff_distance_not_its_95th_percentile() -> None:
    geometry = grid("anisotropic", (4, 40, 40))
    a = np.zeros(geometry.shape, dtype=bool)
    a[1:3, 5:25, 5:25] = True
    b = a.copy()
    b[2, 35, 35] = True  # a stray voxel 10 rows and columns away from a's corner
    distances = mask_surface_distances(a, b, geometry)
    spacing_i, spacing_j, _ = geometry.spacing
    assert distances.hausdorff == pytest.approx(math.hypot(11 * spacing_i, 11 * spacing_j))
    assert distances.hausdorff_percentile(95) == 0.0
    assert len(distances.a_to_b) == boundary_voxels(a).sum()


def test_empty_sides() -> None:
    geometry = grid("axial")
    empty = np.zeros(geometry.shape, dtype=bool)
    some = _block(geometry.shape, 1, 1, 1)
    assert mask_surface_distances(empty, empty, geometry).hausdorff == 0.0
    one_sided = mask_surface_distances(some, empty, geometry)
    assert one_sided.hausdorff == math.inf and one_sided.mean == math.inf
    with pytest.raises(ValueError, match="differs from the grid"):
        mask_surface_distances(some[1:], some[1:], geometry)


def test_point_distances_both_ways() -> None:
    a = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    b = np.array([[0.0, 3.0, 4.0]])
    distances = point_distances(a, b)
    assert list(distances.a_to_b) == pytest.approx([5.0, math.sqrt(125.0)])
    assert list(distances.b_to_a) == pytest.approx([5.0])
    assert distances.hausdorff == pytest.approx(math.sqrt(125.0))
    assert distances.mean == pytest.approx((10.0 + math.sqrt(125.0)) / 3)
    with pytest.raises(ValueError, match="between 0 and 100"):
        distances.hausdorff_percentile(101)
