"""segio.analysis.statistics: analytic shapes, SimpleITK's label filters, every source.

Grids are oblique, anisotropic (0.7 x 0.9 x 2.5 mm) and non-square; shapes are defined in
LPS millimetres, so a dropped direction, a swapped spacing or a voxel centre taken for a
corner moves a number. Shape measures are checked against SimpleITK's
LabelShapeStatisticsImageFilter built on the same grid (ITK is LPS too), intensities
against LabelIntensityStatisticsImageFilter and numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from segio.analysis.statistics import flat_row, layer_runs, segment_statistics
from segio.errors import ValidationError
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation
from segio.surfaces import Surface
from segio.testing.synthetic import grid, surface_segmentation

SPACING = (0.7, 0.9, 2.5)


def oblique(shape: Sequence[int]) -> Geometry:
    """The oblique test grid (25 degrees about (1, 2, 3), 0.7 x 0.9 x 2.5 mm) in ``shape``."""
    return grid("oblique", shape)


def centres(geometry: Geometry) -> NDArray[np.float64]:
    """LPS centre of every voxel, shape (k, j, i, 3)."""
    k, j, i = np.indices(geometry.shape)
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3)
    return geometry.ijk_to_points(ijk).reshape(*geometry.shape, 3)


def ellipsoid(
    geometry: Geometry, centre: Sequence[float], radii: Sequence[float], degrees: float = 0.0
) -> NDArray[np.bool_]:
    """Voxels whose centre lies in an ellipsoid given in LPS mm (rotated about z)."""
    angle = math.radians(degrees)
    rotation = np.array(
        [[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]]
    )
    local = (centres(geometry) - np.asarray(centre)) @ rotation
    return np.asarray(((local / np.asarray(radii)) ** 2).sum(axis=-1) <= 1.0)


def labelmap(
    geometry: Geometry, *masks: NDArray[np.bool_], names: Sequence[str] = ()
) -> Segmentation:
    segmentation = Segmentation()
    for n, mask in enumerate(masks):
        name = names[n] if n < len(names) else f"s{n + 1}"
        segmentation.add_mask(mask, name, segment_id=f"s{n + 1}", geometry=geometry)
    return segmentation


def sitk_image(array: NDArray[np.generic], geometry: Geometry):  # type: ignore[no-untyped-def]
    import SimpleITK as sitk  # noqa: N813

    image = sitk.GetImageFromArray(array)  # numpy (k, j, i) is ITK's (x=i, y=j, z=k)
    image.SetSpacing(geometry.spacing.tolist())
    image.SetOrigin(geometry.origin.tolist())
    image.SetDirection(geometry.direction.ravel().tolist())  # columns are the i, j, k axes
    return image


# -- analytic shapes ----------------------------------------------------------------------


def test_sphere_volume_and_surface_area_within_one_percent() -> None:
    radius = 40.0  # 16 voxels along k (2.5 mm), 57 along i
    geometry = oblique((40, 96, 122))
    middle = geometry.ijk_to_points([[60.8, 47.3, 19.6]])[0]
    segmentation = labelmap(geometry, ellipsoid(geometry, middle, [radius] * 3))
    (row,) = segment_statistics(segmentation)
    volume, area = 4.0 / 3.0 * math.pi * radius**3, 4.0 * math.pi * radius**2
    assert row["volume_mm3"] == pytest.approx(volume, rel=0.01)
    assert row["volume_cm3"] == pytest.approx(row["volume_mm3"] / 1000.0)
    assert row["surface_area_mm2"] == pytest.approx(area, rel=0.01)
    assert row["surface_volume_mm3"] == pytest.approx(volume, rel=0.01)
    assert 0.99 < row["sphericity"] <= 1.0
    assert np.allclose(row["centroid_lps"], middle, atol=0.05)


def test_box_volume_and_surface_area_within_one_percent() -> None:
    """A box of whole voxels: its volume is exact; the default smoothed surface rounds its
    edges by about two voxels (docs/statistics.md), which this box is large enough to keep
    under 1 % (a 40 x 30 x 16 voxel box loses 5 %)."""
    size = (200, 160, 130)  # voxels along i, j, k
    geometry = oblique((size[2] + 4, size[1] + 4, size[0] + 4))
    mask = np.zeros(geometry.shape, dtype=bool)
    mask[2:-2, 2:-2, 2:-2] = True
    (row,) = segment_statistics(labelmap(geometry, mask))
    sides = np.array(size) * np.array(SPACING)
    area = 2.0 * (sides[0] * sides[1] + sides[1] * sides[2] + sides[0] * sides[2])
    assert row["volume_mm3"] == pytest.approx(float(np.prod(sides)), rel=1e-9)
    assert row["surface_area_mm2"] == pytest.approx(area, rel=0.01)
    assert row["surface_volume_mm3"] == pytest.approx(float(np.prod(sides)), rel=0.01)
    assert row["obb_size_mm"] == pytest.approx(sorted(sides), rel=1e-9)


def test_closed_surface_source_takes_area_and_volume_from_its_mesh() -> None:
    """An analytic box mesh (20 x 30 x 40 mm): area and volume exact, not rasterised."""
    corners = np.array([[x, y, z] for x in (0, 20) for y in (0, 30) for z in (0, 40)], float)
    corners += (-31.5, 12.25, 80.0)
    faces = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
             [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]  # fmt: skip
    box = Surface(corners, faces)
    segmentation = Segmentation(
        [Segment("box", "box")],
        source_representation=Representation.CLOSED_SURFACE,
        surfaces={"box": box},
    )
    (row,) = segment_statistics(segmentation)
    assert row["surface_area_mm2"] == pytest.approx(2 * (600 + 1200 + 800), rel=1e-12)
    assert row["volume_mm3"] == pytest.approx(24000.0, rel=1e-12)
    assert row["surface_volume_mm3"] == row["volume_mm3"]
    assert row["voxel_count"] > 0  # from the derived labelmap
    assert row["layer"] is None and row["label"] is None
    assert np.allclose(row["centroid_lps"], corners.mean(axis=0), atol=1.0)


def test_open_source_surface_has_no_volume_and_says_so() -> None:
    sheet = Surface([[0, 0, 0], [10, 0, 0], [0, 10, 0]], [[0, 1, 2]])
    segmentation = Segmentation(
        [Segment("sheet", "sheet")],
        source_representation=Representation.CLOSED_SURFACE,
        surfaces={"sheet": sheet},
    )
    with pytest.warns(UserWarning, match="'sheet' is open"):
        (row,) = segment_statistics(segmentation)
    assert row["surface_area_mm2"] == pytest.approx(50.0)
    assert row["surface_volume_mm3"] is None and row["sphericity"] is None


# -- SimpleITK's LabelShapeStatistics -------------------------------------------------


def shape_case() -> Segmentation:
    """Two rotated ellipsoids in layer 0 and one overlapping them in layer 1."""
    geometry = oblique((24, 70, 90))
    at = geometry.ijk_to_points([[30.2, 30.7, 11.1], [62.4, 40.2, 12.3]])
    first = ellipsoid(geometry, at[0], [14, 9, 20], degrees=30)
    second = ellipsoid(geometry, at[1], [8, 15, 11], degrees=-55) & ~first
    third = ellipsoid(geometry, (at[0] + at[1]) / 2, [18, 6, 9], degrees=10)
    segmentation = labelmap(geometry, first, second, third)
    assert [s.layer for s in segmentation.segments.values()] == [0, 0, 1]
    return segmentation


def test_shape_measures_match_simpleitk_on_an_oblique_grid() -> None:
    import SimpleITK as sitk  # noqa: N813

    segmentation = shape_case()
    geometry = segmentation.require_geometry()
    rows = {row["id"]: row for row in segment_statistics(segmentation, surface=False)}
    for segment in segmentation.segments.values():
        array = segmentation.layers[segment.layer].array
        shape = sitk.LabelShapeStatisticsImageFilter()
        shape.ComputeOrientedBoundingBoxOn()
        shape.Execute(sitk_image(array, geometry))
        label, row = segment.label_value, rows[segment.id]
        assert row["voxel_count"] == shape.GetNumberOfPixels(label)
        assert row["volume_mm3"] == pytest.approx(shape.GetPhysicalSize(label), rel=1e-9)
        assert np.allclose(row["centroid_lps"], shape.GetCentroid(label), rtol=0, atol=1e-6)
        assert np.allclose(
            row["principal_moments_mm2"], shape.GetPrincipalMoments(label), rtol=1e-6
        )
        theirs = np.array(shape.GetPrincipalAxes(label)).reshape(3, 3)
        ours = np.array(row["principal_axes_lps"])
        assert np.allclose(np.abs(np.einsum("ij,ij->i", ours, theirs)), 1.0, atol=1e-9)
        assert np.linalg.det(ours) == pytest.approx(1.0)
        assert row["obb_axes_lps"] == row["principal_axes_lps"]
        assert row["elongation"] == pytest.approx(shape.GetElongation(label), rel=1e-9)
        assert row["flatness"] == pytest.approx(shape.GetFlatness(label), rel=1e-9)
        assert np.allclose(row["obb_size_mm"], shape.GetOrientedBoundingBoxSize(label), rtol=1e-6)
        # ITK's axis signs may differ from ours: the same box has the same 8 corners.
        vertices = np.array(shape.GetOrientedBoundingBoxVertices(label)).reshape(8, 3)
        origin, axes = np.array(row["obb_origin_lps"]), np.array(row["obb_axes_lps"])
        size = np.array(row["obb_size_mm"])
        corners = np.array(
            [origin + axes.T @ (size * [a, b, c]) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
        )
        gaps = np.linalg.norm(corners[:, None, :] - vertices[None, :, :], axis=2).min(axis=1)
        assert gaps.max() < 0.01
        start, extent = np.array(shape.GetBoundingBox(label)).reshape(2, 3)
        assert row["extent"] == {
            axis: [int(start[n]), int(start[n] + extent[n] - 1)] for n, axis in enumerate("ijk")
        }


def test_axis_aligned_bounds_are_voxel_corners_in_lps() -> None:
    segmentation = shape_case()
    geometry = segmentation.require_geometry()
    half = 0.5 * np.abs(geometry.ijk_to_lps[:3, :3]).sum(axis=1)
    points = centres(geometry)
    for row in segment_statistics(segmentation, surface=False):
        inside = points[segmentation.mask(row["id"])]
        assert np.allclose(row["bounds_min_lps"], inside.min(axis=0) - half, atol=1e-9)
        assert np.allclose(row["bounds_max_lps"], inside.max(axis=0) + half, atol=1e-9)


def test_overlapping_layers_are_measured_each_on_its_own() -> None:
    segmentation = shape_case()
    geometry = segmentation.require_geometry()
    points = centres(geometry)
    for row in segment_statistics(segmentation, surface=False):
        mask = segmentation.mask(row["id"])
        assert row["voxel_count"] == int(mask.sum())
        assert np.allclose(row["centroid_lps"], points[mask].mean(axis=0), atol=1e-9)
    assert segmentation.overlaps()


# -- intensities ------------------------------------------------------------------------


def test_intensities_match_simpleitk_and_numpy() -> None:
    import SimpleITK as sitk  # noqa: N813

    segmentation = shape_case()
    geometry = segmentation.require_geometry()
    values = np.random.default_rng(3).normal(40.0, 25.0, geometry.shape).round(1)
    rows = segment_statistics(
        segmentation, reference_image=(values, geometry), surface=False, percentiles=(5, 95, 2.5)
    )
    for segment, row in zip(segmentation.segments.values(), rows, strict=True):
        labels = segmentation.layers[segment.layer].array
        found = sitk.LabelIntensityStatisticsImageFilter()
        found.Execute(sitk_image(labels, geometry), sitk_image(values, geometry))
        label, inside = segment.label_value, values[segmentation.mask(segment.id)]
        assert row["intensity_voxel_count"] == found.GetNumberOfPixels(label) == inside.size
        assert row["mean"] == pytest.approx(found.GetMean(label), rel=1e-12)
        assert row["stdev"] == pytest.approx(found.GetStandardDeviation(label), rel=1e-9)
        assert row["min"] == found.GetMinimum(label) and row["max"] == found.GetMaximum(label)
        assert row["median"] == pytest.approx(np.median(inside), abs=1e-12)
        expected = np.percentile(inside, [5, 95, 2.5])
        assert [row["percentile_05"], row["percentile_95"], row["percentile_2.5"]] == (
            pytest.approx(expected.tolist(), abs=1e-12)
        )


def test_reference_on_a_finer_grid_is_sampled_on_the_image_grid() -> None:
    """Image voxels of half the size, each nearest to exactly one segmentation voxel: a
    segment covers 8 image voxels per voxel of its own, wherever the resampler's code."""
    segmentation = shape_case()
    geometry = segmentation.require_geometry()
    matrix = geometry.ijk_to_lps.copy()
    matrix[:3, :3] /= 2.0
    matrix[:3, 3] = geometry.ijk_to_points([[-0.25, -0.25, -0.25]])[0]
    fine = Geometry(matrix, tuple(2 * n for n in geometry.shape))
    values = np.random.default_rng(5).integers(-100, 100, fine.shape).astype(np.int16)
    rows = segment_statistics(segmentation, reference_image=(values, fine), surface=False)
    for row in rows:
        mask = segmentation.mask(row["id"])
        for axis in range(3):
            mask = mask.repeat(2, axis=axis)
        assert row["intensity_voxel_count"] == 8 * row["voxel_count"]
        assert row["mean"] == pytest.approx(values[mask].mean(), rel=1e-12)
        assert row["median"] == np.median(values[mask])


def test_values_outside_the_image_and_nan_values_are_left_out() -> None:
    segmentation = shape_case()
    geometry = segmentation.require_geometry()
    values = np.arange(np.prod(geometry.shape), dtype=np.float64).reshape(geometry.shape)
    values[11] = np.nan  # a slice missing from a series
    (row, *_) = segment_statistics(segmentation, reference_image=(values, geometry), surface=False)
    mask = segmentation.mask("s1")
    kept = mask & ~np.isnan(values)
    assert mask[11].any() and row["intensity_voxel_count"] == int(kept.sum())
    assert row["mean"] == pytest.approx(values[kept].mean())


def test_empty_segment_gets_zeros_and_nones() -> None:
    geometry = oblique((7, 13, 11))
    segmentation = Segmentation(
        [Segment("empty", "empty", label_value=2), Segment("dot", "dot")],
        [Layer(np.zeros(geometry.shape, np.uint8), geometry)],
    )
    segmentation.layers[0].array[3, 6, 5] = 1
    values = np.ones(geometry.shape)
    empty, dot = segment_statistics(segmentation, reference_image=(values, geometry))
    assert empty["voxel_count"] == 0 and empty["volume_mm3"] == 0.0
    assert empty["surface_area_mm2"] == 0.0 and empty["sphericity"] is None
    assert empty["centroid_lps"] is None and empty["extent"] is None
    assert empty["intensity_voxel_count"] == 0 and empty["mean"] is None
    assert dot["voxel_count"] == 1 and dot["stdev"] is None  # no spread from one value
    assert dot["principal_moments_mm2"] == [0.0, 0.0, 0.0]
    assert dot["elongation"] is None and dot["flatness"] is None
    # Axes are undetermined for one voxel (ITK's are rounding noise): LPS's, so the
    # oriented box is the voxel's axis-aligned box.
    assert np.allclose(dot["obb_size_mm"], np.abs(geometry.ijk_to_lps[:3, :3]).sum(axis=1))
    assert np.allclose(
        np.subtract(dot["bounds_max_lps"], dot["bounds_min_lps"]), dot["obb_size_mm"]
    )
    assert dot["extent"] == {"i": [5, 5], "j": [6, 6], "k": [3, 3]}
    assert all(value is None for key, value in flat_row(empty).items() if key.startswith("obb"))


# -- other sources and labels -----------------------------------------------------------


def test_contour_source_uses_its_derived_labelmap() -> None:
    geometry = oblique((12, 40, 50))
    mask = ellipsoid(geometry, geometry.ijk_to_points([[24.5, 19.5, 5.5]])[0], [12, 10, 9])
    source = labelmap(geometry, mask)
    contours = source.representation(Representation.PLANAR_CONTOURS)
    segmentation = Segmentation(
        [Segment("s1", "s1")],
        source_representation=Representation.PLANAR_CONTOURS,
        contours=contours.contours,
    )
    (row,) = segment_statistics(segmentation)
    derived = segmentation.representation(Representation.BINARY_LABELMAP)
    assert row["voxel_count"] == derived.voxel_counts()["s1"]
    volume = float(mask.sum()) * geometry.voxel_volume  # on a grid of the contours' own
    assert row["volume_mm3"] == pytest.approx(volume, rel=0.02)
    assert row["surface_area_mm2"] > 0 and row["layer"] is None


def test_surface_source_voxel_measures_come_from_its_labelmap() -> None:
    segmentation = surface_segmentation(2)
    rows = segment_statistics(segmentation, surface=False)
    counts = segmentation.representation(Representation.BINARY_LABELMAP).voxel_counts()
    for row in rows:
        mesh = segmentation.surfaces[row["id"]]
        assert row["voxel_count"] == counts[row["id"]] > 0
        assert row["volume_mm3"] == pytest.approx(mesh.volume(), rel=1e-12)
        assert row["volume_mm3"] == pytest.approx(row["voxel_count"] * 1.0, rel=0.2)


def test_fractional_segment_is_counted_where_at_least_half_inside() -> None:
    geometry = oblique((7, 13, 11))
    fractions = np.random.default_rng(1).integers(0, 256, geometry.shape).astype(np.uint8)
    segmentation = Segmentation(
        [Segment("f", "f")],
        [Layer(fractions, geometry, max_fraction=255)],
        source_representation=Representation.FRACTIONAL_LABELMAP,
    )
    (row,) = segment_statistics(segmentation, surface=False)
    assert row["voxel_count"] == int((fractions >= 128).sum())


def test_large_label_values_and_stray_labels() -> None:
    """A label near 2**32 costs no more than label 1; values no segment owns are ignored."""
    geometry = oblique((7, 13, 11))
    array = np.zeros(geometry.shape, np.uint32)
    array[1:3, 2:5, 3:9] = 4_000_000_000
    array[4, 4:6, :] = 7  # no segment has label 7
    segmentation = Segmentation(
        [Segment("big", "big", label_value=4_000_000_000)], [Layer(array, geometry)]
    )
    (row,) = segment_statistics(segmentation, surface=False)
    assert row["voxel_count"] == 2 * 3 * 6
    assert row["extent"] == {"i": [3, 8], "j": [2, 4], "k": [1, 2]}
    top = np.iinfo(np.uint64).max  # beyond int64: compared in the labels' own type
    wide = Segmentation(
        [Segment("top", "top", label_value=int(top))], [Layer(array.astype(np.uint64), geometry)]
    )
    wide.layers[0].array[array == 4_000_000_000] = top
    assert segment_statistics(wide, surface=False)[0]["voxel_count"] == 2 * 3 * 6


def test_runs_cover_every_voxel_once() -> None:
    labels = np.random.default_rng(2).integers(0, 4, (5, 6, 17)).astype(np.uint8)
    runs = layer_runs(labels, [3, 1])  # member order: label 3 first
    rebuilt = np.zeros_like(labels)
    for n, value in enumerate([3, 1]):
        for at in range(int(runs.bounds[n]), int(runs.bounds[n + 1])):
            k, j, i, length = runs.k[at], runs.j[at], runs.i[at], runs.length[at]
            assert not rebuilt[k, j, i : i + length].any()
            rebuilt[k, j, i : i + length] = value
    assert np.array_equal(rebuilt, np.where(np.isin(labels, [1, 3]), labels, 0))


def test_percentiles_must_be_in_range() -> None:
    with pytest.raises(ValidationError, match="percentile 101"):
        segment_statistics(shape_case(), percentiles=(101,))


# -- reference images read from files -----------------------------------------------------


def image_case() -> tuple[Segmentation, NDArray[np.int16]]:
    geometry = oblique((9, 14, 12))
    mask = ellipsoid(geometry, geometry.ijk_to_points([[5.5, 6.5, 4.2]])[0], [4, 5, 9])
    values = np.random.default_rng(7).integers(-1000, 1500, geometry.shape).astype(np.int16)
    return labelmap(geometry, mask), values


def expected_mean(segmentation: Segmentation, values: NDArray[np.generic]) -> float:
    return float(values[segmentation.mask("s1")].astype(np.float64).mean())


def test_nifti_reference_values_are_scaled_and_placed(tmp_path: Path) -> None:
    import nibabel

    from segio.analysis.images import read_image

    segmentation, stored = image_case()
    geometry = segmentation.require_geometry()
    image = nibabel.Nifti1Image(stored.T, geometry.ijk_to_ras)  # nibabel's (i, j, k)
    image.header.set_slope_inter(0.5, -10.0)
    path = tmp_path / "ct.nii.gz"
    nibabel.save(image, path)
    values, found = read_image(path)
    assert found.is_close(geometry) and values.shape == geometry.shape
    (row,) = segment_statistics(segmentation, reference_image=path, surface=False)
    assert row["mean"] == pytest.approx(expected_mean(segmentation, stored * 0.5 - 10.0))


@pytest.mark.parametrize("space", ["left-posterior-superior", "right-anterior-superior"])
def test_nrrd_reference_in_lps_or_ras_space(tmp_path: Path, space: str) -> None:
    import nrrd

    from segio.analysis.images import read_image

    segmentation, stored = image_case()
    geometry = segmentation.require_geometry()
    flip = np.array([1.0, 1.0, 1.0]) if space.startswith("left") else np.array([-1.0, -1.0, 1.0])
    header = {
        "space": space,
        "space directions": (geometry.ijk_to_lps[:3, :3] * flip[:, None]).T,  # row per axis
        "space origin": geometry.origin * flip,
        "encoding": "gzip",
    }
    path = tmp_path / "ct.nrrd"
    nrrd.write(str(path), stored.T.copy(), header)  # pynrrd's (i, j, k)
    values, found = read_image(path)
    assert found.is_close(geometry) and np.array_equal(values, stored)
    (row,) = segment_statistics(segmentation, reference_image=path, surface=False)
    assert row["mean"] == pytest.approx(expected_mean(segmentation, stored))


def dicom_case(folder: Path) -> tuple[Segmentation, NDArray[np.floating]]:
    """A CT series on the segmentation's grid, stored values rescaled by 2 and -1024."""
    import pydicom

    from segio.testing.series import reference_series

    segmentation, stored = image_case()
    reference_series(segmentation.require_geometry(), folder)
    for k, file in enumerate(sorted(folder.glob("*.dcm"))):
        dataset = pydicom.dcmread(file)
        dataset.PixelData = stored[k].astype("<i2").tobytes()
        dataset.RescaleSlope, dataset.RescaleIntercept = 2, -1024
        dataset.save_as(file)
    return segmentation, stored * 2.0 - 1024.0


def test_dicom_series_reference_is_rescaled(tmp_path: Path) -> None:
    segmentation, hounsfield = dicom_case(tmp_path / "ct")
    (row,) = segment_statistics(segmentation, reference_image=tmp_path / "ct", surface=False)
    inside = hounsfield[segmentation.mask("s1")]
    assert row["intensity_voxel_count"] == inside.size
    assert row["mean"] == pytest.approx(inside.mean())
    assert row["min"] == inside.min() and row["max"] == inside.max()


def test_dicom_series_with_a_missing_slice_leaves_it_out(tmp_path: Path) -> None:
    from segio.analysis.images import read_image

    segmentation, hounsfield = dicom_case(tmp_path / "ct")
    (tmp_path / "ct" / "0004.dcm").unlink()
    values, geometry = read_image(tmp_path / "ct")
    assert geometry.is_close(segmentation.require_geometry(), atol=1e-4)
    assert np.isnan(values[4]).all() and not np.isnan(np.delete(values, 4, axis=0)).any()
    (row,) = segment_statistics(segmentation, reference_image=tmp_path / "ct", surface=False)
    mask = segmentation.mask("s1")
    mask[4] = False
    assert segmentation.mask("s1")[4].any()
    assert row["intensity_voxel_count"] == int(mask.sum())
    assert row["mean"] == pytest.approx(hounsfield[mask].mean())
