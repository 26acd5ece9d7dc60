"""Resampling (nearest, quality), crop, pad, common grids and ``--resample`` targets.

Every case runs on the oblique, anisotropic, non-square test grid unless it is about
axes; thin structures are checked in both lattice alignments of a grid twice as coarse,
with nearest neighbour shown to lose them in that very case.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import segio
from segio.contours import Contour, PlanarContours
from segio.converters.resample import (
    MODES,
    common_grid,
    crop_to_segments,
    pad,
    resample,
    target_geometry,
)
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation
from segio.terminology import Code, Terminology
from segio.testing.synthetic import grid, small_segmentation, surface_segmentation

OBLIQUE = grid("oblique", (12, 16, 20))  # 0.7 x 0.9 x 2.5 mm, rotated, k j i = 12 16 20


def _coarser(source: Geometry, shift: float) -> Geometry:
    """``source`` with voxels twice as large; ``shift`` 0: the first outer corner kept (the
    coarse centres fall on fine voxel boundaries), 0.5: moved back by half a fine voxel
    (the coarse centres fall on fine voxel centres)."""
    matrix = source.ijk_to_lps.copy()
    matrix[:3, :3] = source.ijk_to_lps[:3, :3] * 2
    corner = source.ijk_to_points([[-0.5 - shift] * 3])[0]
    matrix[:3, 3] = corner + matrix[:3, :3] @ np.full(3, 0.5)
    size = -(-np.array(source.shape) // 2) + 1
    return Geometry(matrix, size.tolist())


def _one(mask: NDArray[np.bool_], geometry: Geometry = OBLIQUE, **fields: object) -> Segmentation:
    segmentation = Segmentation()
    segmentation.add_mask(mask, "s", geometry=geometry, **fields)  # type: ignore[arg-type]
    return segmentation


def _ball(geometry: Geometry, centre: NDArray[np.float64], radius: float) -> NDArray[np.bool_]:
    """Voxels of ``geometry`` whose centre is within ``radius`` mm of ``centre``."""
    k, j, i = np.indices(geometry.shape)
    points = geometry.ijk_to_points(np.column_stack([i.ravel(), j.ravel(), k.ravel()]))
    inside: NDArray[np.bool_] = np.linalg.norm(points - centre, axis=1) <= radius
    return inside.reshape(geometry.shape)


def _dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    return float(2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


# -- nearest and exact moves --------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_the_same_grid_is_the_identity(mode: str) -> None:
    segmentation = small_segmentation(kind="oblique", overlapping=True)
    result = resample(segmentation, segmentation.require_geometry(), mode=mode)
    assert len(result.layers) == len(segmentation.layers) == 3
    for before, after in zip(segmentation.layers, result.layers, strict=True):
        assert np.array_equal(before.array, after.array)
        assert after.array is not before.array
    for key, segment in segmentation.segments.items():
        kept = result.segments[key]
        assert (kept.name, kept.color, kept.terminology, kept.layer, kept.label_value) == (
            segment.name,
            segment.color,
            segment.terminology,
            segment.layer,
            segment.label_value,
        )


@pytest.mark.parametrize("mode", MODES)
def test_a_grid_shifted_by_whole_voxels_is_an_exact_shift(mode: str) -> None:
    segmentation = small_segmentation(kind="oblique")
    source = segmentation.require_geometry()
    assert len(set(source.shape)) == 3 and not np.allclose(source.direction, np.eye(3))
    shift = (1, -2, 3)  # k, j, i
    target = source.cropped(shift, source.shape)
    moved = resample(segmentation, target, mode=mode)
    array = segmentation.layers[0].array
    expected = np.zeros_like(array)
    k, j, i = source.shape
    expected[0 : k - 1, 2:j, 0 : i - 3] = array[1:k, 0 : j - 2, 3:i]
    assert np.array_equal(moved.layers[0].array, expected)
    assert moved.require_geometry() == target


def test_nearest_along_axes_matches_point_sampling() -> None:
    """The axis-by-axis gather (axes permuted and reversed, another spacing) takes the label
    at each target centre, as sampling every centre's coordinates does."""
    segmentation = small_segmentation(kind="oblique")
    source = segmentation.require_geometry()
    matrix = np.eye(4)
    matrix[:3, 0] = -source.ijk_to_lps[:3, 1] * 0.73  # new i runs back along old j
    matrix[:3, 1] = source.ijk_to_lps[:3, 0] * 1.37  # new j along old i
    matrix[:3, 2] = source.ijk_to_lps[:3, 2] * 0.61
    matrix[:3, 3] = source.ijk_to_points([[0.2, 12.3, -0.63]])[0]  # no centre on a tie
    target = Geometry(matrix, (15, 9, 21))
    result = resample(segmentation, target).layers[0].array
    k, j, i = np.indices(target.shape)
    ijk = np.column_stack([i.ravel(), j.ravel(), k.ravel()]).astype(float)
    at = np.floor(source.points_to_ijk(target.ijk_to_points(ijk)) + 0.5).astype(int)
    inside = np.all((at >= 0) & (at < np.array(source.size_ijk)), axis=1)
    expected = np.zeros(len(at), dtype=result.dtype)
    expected[inside] = segmentation.layers[0].array[at[inside, 2], at[inside, 1], at[inside, 0]]
    assert np.count_nonzero(expected) > 50
    assert np.array_equal(result.reshape(-1), expected)


def test_an_unknown_mode_is_refused() -> None:
    segmentation = small_segmentation(kind="oblique")
    with pytest.raises(segio.ValidationError, match=r"unknown resampling mode 'linear'.*quality"):
        resample(segmentation, segmentation.require_geometry(), mode="linear")


# -- quality: thin structures -------------------------------------------------------------


@pytest.mark.parametrize(("shift", "at"), [(0.0, 8), (0.5, 9)])
def test_quality_keeps_a_one_voxel_plate_that_nearest_loses(shift: float, at: int) -> None:
    mask = np.zeros(OBLIQUE.shape, bool)
    mask[2:10, 3:13, at] = True  # k, j span; one voxel thick along i
    segmentation = _one(mask)
    target = _coarser(OBLIQUE, shift)
    assert resample(segmentation, target).voxel_counts() == {"s": 0}
    kept = resample(segmentation, target, mode="quality").mask("s")
    k, j, i = np.nonzero(kept)
    assert len(set(i.tolist())) == 1  # one target voxel thick, not dilated
    # The sheet covers every coarse cell the plate spans in k and j, without holes.
    assert len(set(zip(k.tolist(), j.tolist(), strict=True))) == len(k) >= 4 * 4
    assert np.ptp(k) + 1 == len(set(k.tolist())) and np.ptp(j) + 1 == len(set(j.tolist()))


@pytest.mark.parametrize(("shift", "row"), [(0.0, (6, 8)), (0.5, (7, 9))])
def test_quality_keeps_a_one_voxel_tube_that_nearest_loses(
    shift: float, row: tuple[int, int]
) -> None:
    mask = np.zeros(OBLIQUE.shape, bool)
    mask[row[0], row[1], 2:18] = True  # a line of 16 voxels along i
    segmentation = _one(mask)
    target = _coarser(OBLIQUE, shift)
    assert resample(segmentation, target).voxel_counts() == {"s": 0}
    kept = resample(segmentation, target, mode="quality").mask("s")
    k, j, i = np.nonzero(kept)
    assert len(set(zip(k.tolist(), j.tolist(), strict=True))) == 1  # one voxel across
    assert len(i) == np.ptp(i) + 1 >= 8  # unbroken along its length


def test_a_voxel_exactly_one_target_voxel_from_a_kept_one_leaves_no_trace() -> None:
    """Three times coarser, corners kept: the plate's centre is the centre of a target
    voxel that is only one third covered, exactly one voxel from the slab's last kept
    voxel. Not farther than one voxel: no trace, the slab does not grow."""
    mask = np.zeros(OBLIQUE.shape, bool)
    mask[3:9, 3:12, 0:9] = True  # a slab: target voxels k 1-2, j 1-3, i 0-2 exactly
    mask[3:9, 3:12, 10] = True  # a plate after a one-voxel gap, centred in target i = 3
    matrix = OBLIQUE.ijk_to_lps.copy()
    matrix[:3, :3] *= 3
    matrix[:3, 3] = OBLIQUE.ijk_to_points([[-0.5] * 3])[0] + matrix[:3, :3] @ np.full(3, 0.5)
    target = Geometry(matrix, (4, 6, 7))
    kept = resample(_one(mask), target, mode="quality").mask("s")
    expected = np.zeros(target.shape, bool)
    expected[1:3, 1:4, 0:3] = True
    assert np.array_equal(kept, expected)


def test_quality_keeps_a_plate_on_a_leaning_grid() -> None:
    """A target turned 30 degrees against the source (sampled, not separable)."""
    mask = np.zeros(OBLIQUE.shape, bool)
    mask[2:10, 3:13, 9] = True
    segmentation = _one(mask)
    turn = np.array([[np.cos(0.5), -np.sin(0.5), 0], [np.sin(0.5), np.cos(0.5), 0], [0, 0, 1]])
    coarse = _coarser(OBLIQUE, 0.0)
    matrix = coarse.ijk_to_lps.copy()
    matrix[:3, :3] = turn @ matrix[:3, :3]
    centre = OBLIQUE.ijk_to_points([[9.5, 7.5, 5.5]])[0]
    matrix[:3, 3] = centre - matrix[:3, :3] @ np.array([7.0, 6.0, 4.0])
    target = Geometry(matrix, (9, 13, 15))
    assert target.axis_scales(OBLIQUE) is None
    assert resample(segmentation, target, mode="quality").voxel_counts()["s"] >= 12


# -- quality: thick structures ------------------------------------------------------------


@pytest.mark.parametrize("spacing", ["1.4,1.8,5", "2", "1.1,1.3,3.7", "0.47,0.6,1.67"])
def test_quality_keeps_a_sphere_volume_and_beats_nearest(spacing: str) -> None:
    source = grid("oblique", (24, 40, 44))
    centre = source.ijk_to_points([[21.3, 19.7, 11.6]])[0]
    segmentation = _one(_ball(source, centre, 9.0), source)
    target = target_geometry(spacing, segmentation)
    truth = _ball(target, centre, 9.0)
    nearest = resample(segmentation, target).mask("s")
    quality = resample(segmentation, target, mode="quality").mask("s")
    volume = np.count_nonzero(segmentation.mask("s")) * source.voxel_volume
    # 9 mm on voxels up to 5 mm deep: the discretisation alone moves the volume ~3%.
    assert abs(np.count_nonzero(quality) * target.voxel_volume / volume - 1) < 0.04
    assert _dice(quality, truth) >= _dice(nearest, truth)


def test_quality_on_a_leaning_grid_keeps_a_sphere_volume() -> None:
    source = grid("oblique", (24, 40, 44))
    centre = source.ijk_to_points([[21.3, 19.7, 11.6]])[0]
    segmentation = _one(_ball(source, centre, 9.0), source)
    target = Geometry.from_spacing((14, 17, 19), (1.5, 1.3, 2.0), centre - 12.0)
    assert source.axis_scales(target) is None
    quality = resample(segmentation, target, mode="quality").mask("s")
    volume = np.count_nonzero(segmentation.mask("s")) * source.voxel_volume
    assert abs(np.count_nonzero(quality) * target.voxel_volume / volume - 1) < 0.05
    assert _dice(quality, _ball(target, centre, 9.0)) > 0.9


def test_overlapping_segments_stay_overlapping_each_on_its_own() -> None:
    """Layers are resampled one by one: a segment comes out as it would alone."""
    source = grid("oblique", (24, 40, 44))
    a = _ball(source, source.ijk_to_points([[18.0, 19.0, 11.0]])[0], 7.0)
    b = _ball(source, source.ijk_to_points([[26.0, 21.0, 12.0]])[0], 6.0)
    assert np.any(a & b)
    segmentation = Segmentation()
    segmentation.add_mask(a, "a", geometry=source)
    segmentation.add_mask(b, "b")
    assert len(segmentation.layers) == 2
    target = target_geometry("1.6,2,4", segmentation)
    result = resample(segmentation, target, mode="quality")
    assert result.overlaps() and len(result.layers) == 2
    for key, mask in (("a", a), ("b", b)):
        alone = resample(_one(mask, source), target, mode="quality").mask("s")
        assert np.array_equal(result.mask(key), alone)


def test_segments_of_one_layer_keep_layer_and_labels() -> None:
    segmentation = small_segmentation(kind="oblique", overlapping=True)
    target = target_geometry("1.2,1.5,4", segmentation)
    result = resample(segmentation, target, mode="quality")
    assert [len(x.array) for x in result.layers] == [target.shape[0]] * 3
    for key, segment in segmentation.segments.items():
        assert (result.segments[key].layer, result.segments[key].label_value) == (
            segment.layer,
            segment.label_value,
        )
    counts = result.voxel_counts()
    assert all(counts[key] > 0 for key, n in segmentation.voxel_counts().items() if n)


def test_metadata_survives_quality_resampling() -> None:
    mask = np.zeros(OBLIQUE.shape, bool)
    mask[3:9, 4:12, 5:15] = True
    term = Terminology(Code("SCT", "10200004", "Liver"), Code("SCT", "10200004", "Liver"))
    segmentation = _one(mask, color=(0.1, 0.2, 0.3), terminology=term)
    segmentation.segments["s"].properties["note"] = "kept"
    segmentation.provenance["format"] = "nifti"
    result = resample(segmentation, target_geometry("1", segmentation), mode="quality")
    segment = result.segments["s"]
    assert (segment.name, segment.color, segment.terminology) == ("s", (0.1, 0.2, 0.3), term)
    assert segment.properties == {"note": "kept"} and result.provenance["format"] == "nifti"
    assert result.reference_geometry == result.require_geometry()  # a new grid is cited


# -- fractional, surface and contour sources ----------------------------------------------


def _fractional(values: NDArray[np.uint8]) -> Segmentation:
    return Segmentation(
        [Segment("f", "fraction", label_value=1)],
        [Layer(values, OBLIQUE, max_fraction=200)],
        source_representation=Representation.FRACTIONAL_LABELMAP,
    )


def test_fractional_quality_takes_the_mean_fraction() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 201, OBLIQUE.shape).astype(np.uint8)
    target = _coarser(OBLIQUE, 0.0)  # each coarse voxel: 2 x 2 x 2 fine ones, inside
    result = resample(_fractional(values), target, mode="quality")
    layer = result.layers[0]
    assert (
        layer.max_fraction == 200
        and result.source_representation is Representation.FRACTIONAL_LABELMAP
    )
    k, j, i = OBLIQUE.shape
    blocks = values.astype(float).reshape(k // 2, 2, j // 2, 2, i // 2, 2).mean(axis=(1, 3, 5))
    assert np.all(np.abs(layer.array[: k // 2, : j // 2, : i // 2] - blocks) <= 0.5 + 1e-3)
    assert not layer.array[k // 2 :].any()  # the last coarse slab lies beyond the source


def test_fractional_nearest_samples_the_fraction() -> None:
    values = np.zeros(OBLIQUE.shape, np.uint8)
    values[4:6, 6:8, 10:12] = 150
    values[5, 7, 11] = 40
    target = _coarser(OBLIQUE, 0.0)  # centres on fine voxel corners: the higher one
    result = resample(_fractional(values), target)
    assert result.layers[0].array[2, 3, 5] == 40 and np.count_nonzero(result.layers[0].array) == 1


def test_a_surface_is_rasterised_straight_onto_the_target() -> None:
    segmentation = surface_segmentation(1)
    vertices = segmentation.surfaces["Segment_1"].vertices
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    big = Geometry.from_spacing(
        np.ceil((high - low) / (0.8, 0.9, 1.7))[::-1].astype(int) + 2, (0.8, 0.9, 1.7), low - 1
    )
    half = big.cropped((0, 0, 0), (big.shape[0] // 2, big.shape[1], big.shape[2]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # VTK may warn on stdout-less runs
        result = resample(segmentation, half, mode="quality")
        whole = segmentation.representation("binary_labelmap", geometry=big)
    assert result.require_geometry() == half  # cropped to the target, not grown
    assert result.source_representation is Representation.BINARY_LABELMAP
    expected = whole.mask("Segment_1")[: half.shape[0]]
    assert expected.any() and np.array_equal(result.mask("Segment_1"), expected)
    assert result.segments["Segment_1"].name == segmentation.segments["Segment_1"].name
    assert result.conversion_parameters.value("Crop to reference image geometry") == "0"


def _contours() -> Segmentation:
    square = np.array([[-4.0, -4.0, 0], [4.0, -4.0, 0], [4.0, 4.0, 0], [-4.0, 4.0, 0]])
    planes = [Contour(square + np.array([0, 0, z])) for z in (0.0, 2.0, 4.0, 6.0, 8.0, 10.0)]
    reference = Geometry.from_spacing((6, 20, 20), (1.0, 1.0, 2.0), (-9.5, -9.5, 0.0))
    return Segmentation(
        [Segment("c", "box")],
        source_representation=Representation.PLANAR_CONTOURS,
        contours={"c": PlanarContours(planes)},
        reference_geometry=reference,
    )


def test_contours_on_the_target_planes_are_rasterised_onto_it() -> None:
    segmentation = _contours()
    target = target_geometry("0.5,0.5,2", segmentation)
    result = resample(segmentation, target)
    direct = segmentation.representation("binary_labelmap", geometry=target)
    assert np.array_equal(result.mask("c"), direct.mask("c"))
    assert result.voxel_counts()["c"] == 6 * 16 * 16


def test_contours_between_target_slices_go_through_their_own_grid() -> None:
    segmentation = _contours()
    target = target_geometry("1,1,1", segmentation)  # a slice between every two planes
    result = resample(segmentation, target, mode="quality")
    filled = result.mask("c").any(axis=(1, 2))
    assert filled.sum() == 12 and filled.all()  # no empty slice between planes


# -- crop and pad -------------------------------------------------------------------------


def test_crop_to_segments_is_exact_with_margin_and_clamped() -> None:
    segmentation = small_segmentation(kind="oblique", overlapping=True)
    source = segmentation.require_geometry()
    boxes = [b for b in segmentation.extents().values() if b is not None]
    low = np.min([[b[a][0] for a in range(3)] for b in boxes], axis=0)
    high = np.max([[b[a][1] for a in range(3)] for b in boxes], axis=0)
    cropped = crop_to_segments(segmentation)
    grid_ = cropped.require_geometry()
    assert grid_ == source.cropped(low.tolist(), (high - low + 1).tolist())
    assert np.allclose(grid_.origin, source.ijk_to_points([low[::-1]])[0])
    box = tuple(slice(a, b + 1) for a, b in zip(low, high, strict=True))
    for before, after in zip(segmentation.layers, cropped.layers, strict=True):
        assert np.array_equal(after.array, before.array[box])
    assert cropped.voxel_counts() == segmentation.voxel_counts()
    wide = crop_to_segments(segmentation, margin=2).require_geometry()
    start = np.maximum(low - 2, 0)
    stop = np.minimum(high + 2, np.array(source.shape) - 1)
    assert wide == source.cropped(start.tolist(), (stop - start + 1).tolist())
    assert segmentation.reference_geometry is None
    assert cropped.reference_geometry == source  # the image is still cited


def test_crop_of_a_small_segment_and_of_nothing() -> None:
    mask = np.zeros(OBLIQUE.shape, bool)
    mask[5, 6:8, 9] = True
    cropped = crop_to_segments(_one(mask), margin=1)
    assert cropped.require_geometry().shape == (3, 4, 3)
    assert np.count_nonzero(cropped.mask("s")) == 2 and cropped.mask("s")[1, 1:3, 1].all()
    empty = _one(np.zeros(OBLIQUE.shape, bool))
    with pytest.warns(UserWarning, match="nothing to crop to"):
        kept = crop_to_segments(empty)
    assert kept.require_geometry() == OBLIQUE
    with pytest.raises(segio.ValidationError, match="crop margin"):
        crop_to_segments(empty, margin=-1)


def test_crop_keeps_every_fractional_voxel() -> None:
    values = np.zeros(OBLIQUE.shape, np.uint8)
    values[4:7, 5:9, 6:10] = 200
    values[3, 5, 6] = 20  # less than half: not in the mask, still content
    cropped = crop_to_segments(_fractional(values))
    assert cropped.require_geometry().shape == (4, 4, 4)
    assert int(cropped.layers[0].array.sum()) == int(values.sum())


def test_pad_grows_the_grid_by_whole_voxels() -> None:
    segmentation = small_segmentation(kind="oblique")
    source = segmentation.require_geometry()
    padded = pad(segmentation, (1, 2, 3))  # i, j, k
    assert padded.require_geometry() == source.cropped(
        (-3, -2, -1), np.add(source.shape, (6, 4, 2)).tolist()
    )
    expected = np.pad(segmentation.layers[0].array, ((3, 3), (2, 2), (1, 1)))
    assert np.array_equal(padded.layers[0].array, expected)
    assert pad(segmentation, 2).require_geometry().shape == tuple(np.add(source.shape, 4))
    for bad in (-1, (1, 2), 1.5, True):
        with pytest.raises(segio.ValidationError, match="padding"):
            pad(segmentation, bad)  # type: ignore[arg-type]


def test_crop_and_pad_take_surfaces_as_a_labelmap() -> None:
    segmentation = surface_segmentation(1)
    cropped = crop_to_segments(segmentation)
    assert cropped.source_representation is Representation.BINARY_LABELMAP
    mask = cropped.mask("Segment_1")
    assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, :, -1].any()


# -- common grids and targets -------------------------------------------------------------


def test_common_grid_of_one_lattice_is_the_union_box() -> None:
    a = OBLIQUE.cropped((2, 3, 4), (5, 6, 7))
    b = OBLIQUE.cropped((-1, 8, 0), (4, 4, 4))
    flipped = OBLIQUE.cropped((6, 0, 10), (3, 3, 3))
    matrix = flipped.ijk_to_lps.copy()
    matrix[:3, 0] *= -1  # the same voxels, i reversed
    matrix[:3, 3] = flipped.ijk_to_points([[2, 0, 0]])[0]
    c = Geometry(matrix, flipped.shape)
    union = common_grid([a, b, c])
    assert union.is_close(OBLIQUE.cropped((-1, 0, 0), (10, 12, 13)))
    for g in (a, b, c):
        assert union.index_map(g) is not None


def test_common_grid_of_other_spacings_is_the_finest_covering_all() -> None:
    a = OBLIQUE
    fine = Geometry.from_spacing(
        (30, 8, 9), (0.5, 0.4, 1.0), (OBLIQUE.origin + 3.0).tolist(), OBLIQUE.direction
    )
    union = common_grid([a, fine])
    assert np.allclose(union.spacing, (0.5, 0.4, 1.0))
    assert np.allclose(union.direction, a.direction)
    assert np.allclose(union.ijk_to_points([[-0.5] * 3]), a.ijk_to_points([[-0.5] * 3]))
    for g in (a, fine):
        size = g.size_ijk
        corners = np.array(np.meshgrid(*[(-0.5, n - 0.5) for n in size], indexing="ij"))
        ijk = union.points_to_ijk(g.ijk_to_points(corners.reshape(3, -1).T))
        assert np.all(ijk >= -0.5 - 1e-6) and np.all(ijk <= np.array(union.size_ijk) - 0.5 + 1e-6)
    with pytest.raises(segio.GeometryError, match="no grid"):
        common_grid([])


def test_target_geometry_from_spacing_keeps_the_corner_and_covers_the_extent() -> None:
    segmentation = small_segmentation(kind="oblique")  # 7 x 13 x 11 of 0.7 x 0.9 x 2.5 mm
    source = segmentation.require_geometry()
    for spec, spacing in (("0.5", (0.5,) * 3), ("1,1,2.5", (1, 1, 2.5)), ("1x1x2.5", (1, 1, 2.5))):
        target = target_geometry(spec, segmentation)
        assert np.allclose(target.spacing, spacing)
        assert np.allclose(target.direction, source.direction)
        corner = [[-0.5, -0.5, -0.5]]
        assert np.allclose(target.ijk_to_points(corner), source.ijk_to_points(corner))
        extent = np.array(source.size_ijk) * source.spacing
        covered = np.array(target.size_ijk) * target.spacing
        assert np.all(covered >= extent - 1e-9) and np.all(covered - extent < target.spacing)
    assert target_geometry((1.0, 1.0, 2.5), segmentation).size_ijk == (8, 12, 7)
    assert target_geometry(source, segmentation) is source


def test_target_geometry_from_a_reference_image(tmp_path: Path) -> None:
    other = small_segmentation(kind="axial")
    path = segio.write(other, tmp_path / "ref.seg.nrrd")[0]
    target = target_geometry(str(path), small_segmentation(kind="oblique"))
    assert target.is_close(other.require_geometry())


@pytest.mark.parametrize("text", ["abc", "0,1", "1,2", "-1", "nan", "1,2,3,4", "1,,x"])
def test_bad_resample_text_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(segio.ValidationError, match=r"0\.5 \(every axis\) or 1,1,2\.5"):
        target_geometry(text, small_segmentation(kind="oblique"))


def test_a_file_named_like_a_spacing_is_ambiguous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "0.5").write_text("x")
    with pytest.raises(
        segio.ValidationError, match=r"names a file and reads as a spacing.*\./0\.5"
    ):
        target_geometry("0.5", small_segmentation(kind="oblique"))
