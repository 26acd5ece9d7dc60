"""``segio.analysis.comparison``: checked against SimpleITK, plastimatch and distance maps.

Dice and Jaccard are checked against SimpleITK's LabelOverlapMeasuresImageFilter, the
Hausdorff distance against its HausdorffDistanceImageFilter, HD95 and the mean surface
distance against Euclidean distance maps of the boundaries (scipy, boundaries found by
erosion: nothing shared with segio's code), and the boundary distances against
plastimatch; on oblique and anisotropic, non-square grids. Both ways of reaching the
voxels (one grid, one pass; box by box on a lattice) must give the same numbers.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from segio.analysis import comparison
from segio.analysis.comparison import compare
from segio.analysis.pairs import LatticePairs
from segio.errors import ValidationError
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation
from segio.terminology import DEFAULT_TISSUE, Code, Terminology
from segio.testing.synthetic import grid, surface_segmentation, synthetic_segmentation

FACES = ndimage.generate_binary_structure(3, 1)


@pytest.fixture(params=["one grid", "lattice"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the one-pass path and again with the box-by-box path."""
    if request.param == "lattice":
        monkeypatch.setattr(
            comparison, "GridPairs", lambda a, b: LatticePairs(a, b, a.require_geometry())
        )
    return str(request.param)


def _image(array: np.ndarray, geometry: Geometry) -> Any:
    import SimpleITK as sitk  # noqa: N813

    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.uint8))
    image.SetSpacing(geometry.spacing.tolist())
    image.SetOrigin(geometry.origin.tolist())
    image.SetDirection(geometry.direction.ravel().tolist())
    return image


def _rim(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels by erosion (the image border is outside)."""
    return mask & ~ndimage.binary_erosion(mask, FACES, border_value=0)


def _edt_distances(a: np.ndarray, b: np.ndarray, geometry: Geometry) -> tuple[Any, Any]:
    """Boundary-to-boundary distances from distance maps (orthonormal axes)."""
    sampling = geometry.spacing[::-1]
    a_to_b = ndimage.distance_transform_edt(~_rim(b), sampling=sampling)[_rim(a)]
    b_to_a = ndimage.distance_transform_edt(~_rim(a), sampling=sampling)[_rim(b)]
    return a_to_b, b_to_a


def _perturbed(seg: Segmentation) -> Segmentation:
    """Every segment moved: shifted, grown, shrunk; one dropped, one added."""
    labels = seg.layers[0].array
    out = np.zeros_like(labels)
    for n, segment in enumerate(seg.segments.values()):
        mask = labels == segment.label_value
        if n % 3 == 0:
            mask = np.roll(mask, 1, axis=2 - n % 2)
        elif n % 3 == 1:
            mask = ndimage.binary_dilation(mask, FACES)
        else:
            mask = ndimage.binary_erosion(mask, FACES) | (
                mask & (np.arange(mask.shape[1]) % 3 == 0)[:, None]
            )
        out[mask & (out == 0)] = segment.label_value
    other = seg.copy()
    other.layers = [Layer(out, seg.require_geometry())]
    other.modified()
    return other


@pytest.mark.parametrize("kind", ["oblique", "anisotropic"])
def test_agrees_with_simpleitk_and_distance_maps(kind: str, strategy: str) -> None:
    import SimpleITK as sitk  # noqa: N813

    geometry = grid(kind, (14, 31, 26))
    a = synthetic_segmentation(n_segments=5, geometry=geometry, seed=5)
    b = _perturbed(a)
    result = compare(a, b)
    assert not result.resampled
    arr_a, arr_b = a.layers[0].array, b.layers[0].array
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(_image(arr_a, geometry), _image(arr_b, geometry))
    assert len(result.rows) == 5 and {r["status"] for r in result.rows} == {"matched"}
    for row in result.rows:
        label = a.segments[row["segment_a"]].label_value
        mask_a, mask_b = arr_a == label, arr_b == label
        assert row["dice"] == pytest.approx(overlap.GetDiceCoefficient(label), abs=1e-6)
        assert row["jaccard"] == pytest.approx(overlap.GetJaccardCoefficient(label), abs=1e-6)
        assert row["dice"] < 1.0, "every segment was perturbed"
        volume = geometry.voxel_volume
        assert row["volume_a_mm3"] == pytest.approx(mask_a.sum() * volume)
        assert row["volume_difference_percent"] == pytest.approx(
            100.0 * (mask_b.sum() - mask_a.sum()) / mask_a.sum()
        )
        hausdorff = sitk.HausdorffDistanceImageFilter()
        hausdorff.Execute(_image(mask_a, geometry), _image(mask_b, geometry))
        assert row["hausdorff_mm"] == pytest.approx(hausdorff.GetHausdorffDistance(), abs=0.01)
        a_to_b, b_to_a = _edt_distances(mask_a, mask_b, geometry)
        hd95 = max(np.percentile(a_to_b, 95), np.percentile(b_to_a, 95))
        mean = (a_to_b.sum() + b_to_a.sum()) / (a_to_b.size + b_to_a.size)
        assert row["hausdorff95_mm"] == pytest.approx(hd95, abs=1e-6)
        assert row["mean_surface_distance_mm"] == pytest.approx(mean, abs=1e-6)
        assert row["boundary_hausdorff_mm"] == pytest.approx(max(a_to_b.max(), b_to_a.max()))


def _plastimatch(
    a: np.ndarray, b: np.ndarray, geometry: Geometry, folder: Path
) -> dict[str, float]:
    import SimpleITK as sitk  # noqa: N813

    for name, mask in (("a", a), ("b", b)):
        sitk.WriteImage(_image(mask, geometry), str(folder / f"{name}.mha"))
    out = subprocess.run(
        ["plastimatch", "dice", "--hausdorff", str(folder / "a.mha"), str(folder / "b.mha")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        line.split(" = ")[0].strip(): float(line.split(" = ")[1])
        for line in out.splitlines()
        if " = " in line
    }


def _order_statistic(distances: np.ndarray, fraction: float = 0.95) -> float:
    """plastimatch's percentile: the floor(fraction * n - 1)-th smallest value."""
    ordinal = min(int(np.floor(fraction * distances.size - 1)), distances.size - 1)
    return float(np.sort(distances)[ordinal])


def test_boundary_distances_agree_with_plastimatch(tmp_path: Path) -> None:
    geometry = grid("oblique", (14, 23, 19))
    sp = geometry.spacing[::-1]
    k, j, i = np.indices(geometry.shape)
    a = ((k - 7) * sp[0]) ** 2 + ((j - 11) * sp[1]) ** 2 + ((i - 9) * sp[2]) ** 2 < 49.0
    b = ((k - 8) * sp[0]) ** 2 + ((j - 12) * sp[1]) ** 2 + ((i - 8) * sp[2]) ** 2 < 42.0
    b[2, 3, 3] = True  # an island
    a[7, 11, 9:11] = False  # a cavity
    first, second = Segmentation(), Segmentation()
    first.add_mask(a, "x", geometry=geometry)
    second.add_mask(b, "x", geometry=geometry)
    result = compare(first, second)
    row, surface = result.rows[0], result.surfaces[("x", "x")]
    theirs = _plastimatch(a, b, geometry, tmp_path)
    assert row["hausdorff_mm"] == pytest.approx(theirs["Hausdorff distance"], abs=0.01)
    assert row["boundary_hausdorff_mm"] == pytest.approx(
        theirs["Hausdorff distance (boundary)"], abs=0.01
    )
    percentile = (_order_statistic(surface.a_to_b) + _order_statistic(surface.b_to_a)) / 2
    assert percentile == pytest.approx(
        theirs["Percent (0.95) Hausdorff distance (boundary)"], abs=0.01
    )


def test_hausdorff_counts_a_cavity_that_boundaries_miss(strategy: str) -> None:
    """A ball against a shell with a cavity: every boundary voxel of the ball lies on the
    shell, but the ball's centre is far from it. SimpleITK counts it; so does segio."""
    import SimpleITK as sitk  # noqa: N813

    geometry = grid("anisotropic", (15, 40, 44))
    sp = geometry.spacing[::-1]
    k, j, i = np.indices(geometry.shape)
    radius = np.sqrt(((k - 7) * sp[0]) ** 2 + ((j - 20) * sp[1]) ** 2 + ((i - 22) * sp[2]) ** 2)
    ball, shell = radius < 8.0, (radius < 8.0) & (radius >= 5.0)
    first, second = Segmentation(), Segmentation()
    first.add_mask(ball, "s", geometry=geometry)
    second.add_mask(shell, "s", geometry=geometry)
    row = compare(first, second).rows[0]
    hausdorff = sitk.HausdorffDistanceImageFilter()
    hausdorff.Execute(_image(ball, geometry), _image(shell, geometry))
    assert row["hausdorff_mm"] == pytest.approx(hausdorff.GetHausdorffDistance(), abs=0.01)
    assert row["hausdorff_mm"] > 4.0 > row["boundary_hausdorff_mm"] - 1.0


def _box_segmentation(geometry: Geometry, shift: int = 0, axis: int = 1) -> Segmentation:
    mask = np.zeros(geometry.shape, dtype=bool)
    mask[3:8, 4:12, 5:11] = True
    mask = np.roll(mask, shift, axis=axis)
    seg = Segmentation()
    seg.add_mask(mask, "box", geometry=geometry)
    return seg


def test_identical_is_perfect_and_a_shift_of_k_voxels_is_k_spacings(strategy: str) -> None:
    geometry = grid("oblique", (12, 17, 15))
    same = compare(_box_segmentation(geometry), _box_segmentation(geometry)).rows[0]
    assert (same["dice"], same["jaccard"]) == (1.0, 1.0)
    assert same["hausdorff_mm"] == same["hausdorff95_mm"] == same["mean_surface_distance_mm"] == 0
    for axis, spacing in ((0, 2.5), (1, 0.9), (2, 0.7)):
        moved = compare(_box_segmentation(geometry), _box_segmentation(geometry, 2, axis)).rows[0]
        assert moved["hausdorff_mm"] == pytest.approx(2 * spacing)
        assert moved["boundary_hausdorff_mm"] == pytest.approx(2 * spacing)
        assert moved["volume_difference_mm3"] == 0.0


def _permuted(seg: Segmentation) -> Segmentation:
    """The same voxels on a grid cropped by one voxel, axes reordered and one flipped:
    the same lattice, another array."""
    geometry = seg.require_geometry()
    cropped = geometry.cropped((1, 0, 1), np.subtract(geometry.shape, (1, 0, 2)).tolist())
    array = seg.layers[0].array[1:, :, 1:-1]
    matrix = cropped.ijk_to_lps.copy()
    columns = matrix[:3, :3].copy()
    # new (i, j, k) = old (k, i, j reversed)
    size_j = array.shape[1]
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2] = columns[:, 2], columns[:, 0], -columns[:, 1]
    matrix[:3, 3] = cropped.ijk_to_points([[0, size_j - 1, 0]])[0]
    moved = np.flip(np.transpose(array, (1, 2, 0)), axis=0)  # new array (k, j, i)
    result = seg.copy()
    result.layers = [Layer(np.ascontiguousarray(moved), Geometry(matrix, moved.shape))]
    result.modified()
    return result


def test_grids_sharing_a_lattice_compare_exactly() -> None:
    geometry = grid("oblique", (14, 31, 26))
    a = synthetic_segmentation(n_segments=4, geometry=geometry, seed=2)
    b = _perturbed(a)
    b.layers[0].array[0, :, :] = 0  # what the cropping drops
    b.layers[0].array[:, :, [0, -1]] = 0
    b.modified()
    moved = _permuted(b)
    assert moved.require_geometry().index_map(geometry) is not None
    direct, other = compare(a, b), compare(a, moved)
    assert not other.resampled
    for first, second in zip(direct.rows, other.rows, strict=True):
        for key in (
            "dice",
            "voxels_b",
            "hausdorff_mm",
            "hausdorff95_mm",
            "mean_surface_distance_mm",
        ):
            assert first[key] == pytest.approx(second[key], abs=1e-9), key


def _inside_other(points: np.ndarray, mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    index = np.floor(geometry.points_to_ijk(points)[:, ::-1] + 0.5).astype(int)
    valid = np.all((index >= 0) & (index < mask.shape), axis=1)
    found = np.zeros(len(points), dtype=bool)
    found[valid] = mask[tuple(index[valid].T)]
    return found


def _set_hausdorff(a: np.ndarray, ga: Geometry, b: np.ndarray, gb: Geometry) -> float:
    """Brute force over every voxel pair: a centre inside a voxel of the other counts 0."""
    points_a = ga.ijk_to_points(np.argwhere(a)[:, ::-1])
    points_b = gb.ijk_to_points(np.argwhere(b)[:, ::-1])
    apart = cdist(points_a, points_b)
    a_to_b = np.where(_inside_other(points_a, b, gb), 0.0, apart.min(axis=1))
    b_to_a = np.where(_inside_other(points_b, a, ga), 0.0, apart.min(axis=0))
    return float(max(a_to_b.max(), b_to_a.max()))


def test_grids_off_each_others_lattice_are_resampled_for_overlap_only() -> None:
    ga = grid("oblique", (10, 18, 16))
    gb = Geometry(
        ga.ijk_to_lps @ _translation(0.5, 0.3, -0.4) @ np.diag([0.8, 1.0, 1.2, 1]), (11, 20, 13)
    )
    a, b = np.zeros(ga.shape, bool), np.zeros(gb.shape, bool)
    a[2:8, 4:14, 3:12] = True
    b[3:9, 5:16, 2:10] = True
    b[5, 2, 2] = True  # an island
    first, second = Segmentation(), Segmentation()
    first.add_mask(a, "s", geometry=ga)
    second.add_mask(b, "s", geometry=gb)
    result = compare(first, second)
    row = result.rows[0]
    assert result.resampled and "resampled" in result.overlap
    assert row["volume_b_mm3"] == pytest.approx(b.sum() * gb.voxel_volume)
    assert row["hausdorff_mm"] == pytest.approx(_set_hausdorff(a, ga, b, gb), abs=1e-9)
    # Overlap: B sampled at A's voxel centres (nearest neighbour), B inside A's grid.
    sampled = _inside_other(ga.ijk_to_points(np.argwhere(np.ones(ga.shape))[:, ::-1]), b, gb)
    sampled = sampled.reshape(ga.shape)
    assert row["dice"] == pytest.approx(2 * (a & sampled).sum() / (a.sum() + sampled.sum()))
    rim_a = ga.ijk_to_points(np.argwhere(_rim(a))[:, ::-1])
    rim_b = gb.ijk_to_points(np.argwhere(_rim(b))[:, ::-1])
    apart = cdist(rim_a, rim_b)
    mean = (apart.min(axis=1).sum() + apart.min(axis=0).sum()) / sum(apart.shape)
    assert row["mean_surface_distance_mm"] == pytest.approx(mean)


def _translation(i: float, j: float, k: float) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = (i, j, k)
    return matrix


def test_a_finer_grid_of_the_same_voxels_agrees() -> None:
    """B: A's voxels each split in 2 x 2 x 2 on a grid of half the spacing. Resampled onto
    A it is A again, and every centre of one lies in a voxel of the other."""
    ga = grid("anisotropic", (6, 12, 10))
    a = np.zeros(ga.shape, bool)
    a[1:5, 3:9, 2:8] = True
    a[2, 5, 4] = False
    fine = ga.ijk_to_lps @ _translation(-0.25, -0.25, -0.25) @ np.diag([0.5, 0.5, 0.5, 1.0])
    b = a.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    gb = Geometry(fine, b.shape)
    first, second = Segmentation(), Segmentation()
    first.add_mask(a, "s", geometry=ga)
    second.add_mask(b, "s", geometry=gb)
    result = compare(first, second)
    row = result.rows[0]
    assert result.resampled
    assert row["dice"] == 1.0 and row["volume_difference_mm3"] == pytest.approx(0.0)
    assert row["hausdorff_mm"] == 0.0
    assert row["boundary_hausdorff_mm"] > 0, "boundary centres are a quarter voxel apart"


def _named(geometry: Geometry, *segments: tuple[str, int, Terminology | None]) -> Segmentation:
    array = np.zeros(geometry.shape, dtype=np.uint8)
    items = []
    for n, (name, label, terminology) in enumerate(segments):
        array[n, 1:4, 1 + n : 3 + n] = label
        items.append(
            Segment(id=f"id{n}_{label}", name=name, label_value=label, terminology=terminology)
        )
    return Segmentation(items, [Layer(array, geometry)])


LIVER = Terminology(
    Code("SCT", "123037004", "Anatomical Structure"), Code("SCT", "10200004", "Liver")
)
SPLEEN = Terminology(
    Code("SCT", "123037004", "Anatomical Structure"), Code("SCT", "78961009", "Spleen")
)


def test_segments_pair_by_map_name_case_terminology_and_label() -> None:
    geometry = grid("axial", (6, 8, 10))
    a = _named(
        geometry,
        ("Liver", 1, None),
        ("spleen", 2, None),
        ("hepar", 3, LIVER),
        ("Segment_4", 4, None),
        ("heart", 5, None),
    )
    b = _named(
        geometry,
        ("Liver", 7, None),
        ("SPLEEN ", 8, None),
        ("leber", 9, LIVER),
        ("label 4", 4, None),
        ("lung", 6, None),
    )
    rows = compare(a, b).rows
    rules = [(r["name_a"], r["name_b"], r["matched_by"], r["status"]) for r in rows]
    assert rules == [
        ("Liver", "Liver", "name", "matched"),
        ("spleen", "SPLEEN ", "name (case)", "matched"),
        ("hepar", "leber", "terminology", "matched"),
        ("Segment_4", "label 4", "label", "matched"),
        ("heart", None, None, "only in A"),
        (None, "lung", None, "only in B"),
    ]
    assert rows[0]["dice"] == 1.0, "label values differ (1 vs 7), the voxels do not"
    assert rows[4]["volume_a_mm3"] == 6.0 and rows[4]["volume_b_mm3"] is None
    assert rows[5]["volume_b_mm3"] == 6.0 and rows[5].get("dice") is None
    mapped = compare(a, b, mapping={"heart": "lung", "id0_1": "leber"}).rows
    assert [(r["name_a"], r["name_b"], r["matched_by"]) for r in mapped[:3]] == [
        ("Liver", "leber", "map"),
        ("spleen", "SPLEEN ", "name (case)"),
        ("hepar", None, None),
    ]
    assert ("heart", "lung", "map") in [(r["name_a"], r["name_b"], r["matched_by"]) for r in mapped]


def test_generic_or_contradicting_codes_do_not_pair() -> None:
    geometry = grid("axial", (6, 8, 10))
    a = _named(geometry, ("x", 1, DEFAULT_TISSUE), ("liver-ish", 2, LIVER))
    b = _named(geometry, ("y", 3, DEFAULT_TISSUE), ("spleen-ish", 2, SPLEEN))
    statuses = [r["status"] for r in compare(a, b).rows]
    assert statuses == ["only in A", "only in A", "only in B", "only in B"]


def test_ambiguous_names_are_refused_unless_a_later_rule_tells_them_apart() -> None:
    geometry = grid("axial", (6, 8, 10))
    a = _named(geometry, ("Tumor", 1, None), ("Tumor", 2, None))
    b = _named(geometry, ("Tumor", 1, None), ("Tumor", 2, None))
    rows = compare(a, b).rows
    assert [(r["segment_a"], r["segment_b"], r["matched_by"]) for r in rows] == [
        ("id0_1", "id0_1", "label"),
        ("id1_2", "id1_2", "label"),
    ]
    c = _named(geometry, ("Tumor", 5, None), ("Tumor", 6, None))
    with pytest.raises(ValidationError, match="cannot tell which segment is which") as caught:
        compare(a, c)
    assert "\n" not in str(caught.value) and "--map" in str(caught.value)
    fixed = compare(a, c, mapping={"id0_1": "id0_5", "id1_2": "id1_6"}).rows
    assert [r["matched_by"] for r in fixed] == ["map", "map"]


def test_bad_maps_are_refused() -> None:
    geometry = grid("axial", (6, 8, 10))
    a = _named(geometry, ("Liver", 1, None), ("Spleen", 2, None))
    with pytest.raises(ValidationError, match="'Kidney' is not a segment of A"):
        compare(a, a, mapping={"Kidney": "Liver"})
    with pytest.raises(ValidationError, match="mapped twice"):
        compare(a, a, mapping={"Liver": "Liver", "Spleen": "Liver"})


def test_empty_segments_are_noted_not_measured() -> None:
    geometry = grid("oblique", (6, 8, 10))
    a = _named(geometry, ("one", 1, None), ("two", 2, None), ("three", 3, None))
    b = _named(geometry, ("one", 1, None), ("two", 2, None), ("three", 3, None))
    a.layers[0].array[a.layers[0].array == 2] = 0
    b.layers[0].array[b.layers[0].array >= 2] = 0
    for seg in (a, b):
        seg.modified()
    rows = compare(a, b).rows
    assert [r.get("note") for r in rows] == [None, "empty in both", "empty in B"]
    assert rows[1]["dice"] == 1.0 and rows[2]["dice"] == 0.0
    assert rows[2]["hausdorff_mm"] is None and rows[2]["volume_difference_percent"] == -100.0


def test_overlapping_layers_compare_segment_masks(strategy: str) -> None:
    geometry = grid("oblique", (12, 25, 22))
    a = synthetic_segmentation(n_segments=6, geometry=geometry, overlapping=True, seed=1)
    assert len(a.layers) > 1
    b = a.copy()
    for layer in b.layers:
        layer.array = np.roll(layer.array, 1, axis=1)
    b.modified()
    for row in compare(a, b).rows:
        mask_a, mask_b = a.mask(row["segment_a"]), b.mask(row["segment_b"])
        both = (mask_a & mask_b).sum()
        assert row["dice"] == pytest.approx(2 * both / (mask_a.sum() + mask_b.sum()))
        rim = cdist(
            geometry.ijk_to_points(np.argwhere(_rim(mask_a))[:, ::-1]),
            geometry.ijk_to_points(np.argwhere(_rim(mask_b))[:, ::-1]),
        )
        assert row["boundary_hausdorff_mm"] == pytest.approx(
            max(rim.min(axis=0).max(), rim.min(axis=1).max())
        )


def test_surfaces_are_compared_on_the_other_sides_grid() -> None:
    surfaces = surface_segmentation(2, seed=3)
    grid_ = Geometry.from_spacing((1, 1, 1), (1.5, 1.2, 2.0), (-160, -160, -160))
    labelmap = surfaces.representation(Representation.BINARY_LABELMAP, geometry=grid_)
    rows = compare(labelmap, surfaces).rows
    assert all(r["dice"] == 1.0 and r["hausdorff_mm"] == 0.0 for r in rows)
    with pytest.raises(ValidationError, match="--reference") as caught:
        compare(surfaces, surface_segmentation(2, seed=3))
    assert "\n" not in str(caught.value)
    both = compare(surfaces, surface_segmentation(2, seed=3), reference=grid_).rows
    assert [r["dice"] for r in both] == [1.0, 1.0]
